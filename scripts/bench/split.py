"""Split a CSV into two halves of shuffled rows (seed 0): python split.py IN.csv A.csv B.csv"""
import sys

import pandas as pd

src, a, b = sys.argv[1:4]
df = pd.read_csv(src, low_memory=False).sample(frac=1.0, random_state=0).reset_index(drop=True)
half = len(df) // 2
df.iloc[:half].to_csv(a, index=False)
df.iloc[half:].to_csv(b, index=False)
