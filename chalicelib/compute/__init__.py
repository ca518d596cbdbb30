"""Fair compute: numbers factored once, callers admitted fairly."""
