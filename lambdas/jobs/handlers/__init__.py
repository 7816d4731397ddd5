"""Lambda entry points. Each module is one function; each stays thin on purpose."""
