"""Content generators: turn a plan into post text."""
