"""Pure parsers: one module per tool or file format; text in, typed records out."""
