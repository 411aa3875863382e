"""Bounds that keep a hostile expression from exhausting memory, time or the stack.

Workflow authors write expressions, but a manifest may come from anyone who can
submit one, so every evaluation is bounded. The numbers are far above what a
real workflow needs.
"""

from __future__ import annotations

# Longest expression text accepted, in characters.
MAX_EXPRESSION_LENGTH = 10_000

# Deepest nesting of brackets, unary operators and sub-expressions the parser follows.
MAX_NESTING_DEPTH = 100

# Tallest syntax tree: a long chain `a + b + c + ...` is flat to parse but deep to walk.
MAX_TREE_HEIGHT = 200

# Largest string and list (or map) an evaluation may build.
MAX_STRING_LENGTH = 10 * 1024 * 1024
MAX_COLLECTION_ITEMS = 1_000_000

# Deepest nesting of a value (lists in maps in lists...) that is compared, encoded or printed.
MAX_VALUE_DEPTH = 200

# Work units one evaluation may spend: one per node evaluated, one per predicate call, one per
# list item built, one per STRING_CHARS_PER_WORK_UNIT characters built. Stops loops over huge
# ranges; the worst case costs about a second of CPU.
MAX_WORK_UNITS = 2_000_000
STRING_CHARS_PER_WORK_UNIT = 16

# Longest regular expression pattern accepted.
MAX_PATTERN_LENGTH = 1_000
