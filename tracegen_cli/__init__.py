"""The `tracegen` command-line suite: the only package that prints."""
