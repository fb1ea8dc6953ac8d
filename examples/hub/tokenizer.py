"""A tiny whitespace tokenizer: entrypoints may return objects that are not models."""


class WhitespaceTokenizer:
    """Splits text on whitespace and maps words to ids from a fixed vocabulary."""

    def __init__(self, vocab: list[str]):
        self.vocab = {word: i for i, word in enumerate(vocab)}

    def __call__(self, text: str) -> list[int]:
        unknown = len(self.vocab)
        return [self.vocab.get(word, unknown) for word in text.lower().split()]
