dependencies = ["torch"]
import zoo

globals().update(zoo.model_entrypoints)
