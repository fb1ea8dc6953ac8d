IN = 4
OUT = 3
