"""A small, safe reader of SQL ``WHERE`` filters for tables (CSV, Excel, KML, GeoParquet).

Vector files are filtered by GDAL itself (pyogrio's ``where=``, OGR SQL);
tables have no such reader, and ``DataFrame.query`` evaluates Python, so
this module parses the same subset of OGR SQL by hand (about a hundred
lines) and evaluates it on a DataFrame with pandas, never with ``eval``:

* comparisons ``=`` (or ``==``), ``!=`` (or ``<>``), ``<``, ``<=``, ``>``, ``>=``
  between a column and a value (or two columns);
* ``col [NOT] IN ('a', 'b')``, ``col [NOT] LIKE '%大学%'`` (``%`` any text,
  ``_`` one character), ``col IS [NOT] NULL``, ``col [NOT] BETWEEN 1 AND 5``;
* ``AND``, ``OR``, ``NOT`` and parentheses; keywords in any case;
* columns as bare names (Chinese names too) or in double quotes
  (``"landuse type"``); text in single quotes (``''`` for a quote inside);
  numbers as written (``12``, ``-3.5``).

As in SQL, a comparison with an empty cell is unknown (three-valued logic:
``NOT`` of unknown is unknown, ``unknown OR true`` is true) and unknown
rows are left out; ``LIKE`` ignores the case of Latin letters, as OGR and
SQLite do.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["WhereError", "filter_rows", "where_mask"]

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<num>-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)
    | '(?P<str>(?:[^']|'')*)'
    | "(?P<qid>[^"]+)"
    | (?P<op><>|!=|==|<=|>=|=|<|>|\(|\)|,)
    | (?P<word>[^\W\d][\w.:-]*)
    )""", re.VERBOSE)
_KEYWORDS = {"and", "or", "not", "in", "like", "is", "null", "between"}


class WhereError(ValueError):
    """A filter that cannot be parsed or names a column that is not there."""


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise WhereError(f"cannot read {text[pos:pos + 20]!r} (at character {pos + 1})")
        pos = m.end()
        if m.group("num") is not None:
            out.append(("value", float(m.group("num"))))
        elif m.group("str") is not None:
            out.append(("value", m.group("str").replace("''", "'")))
        elif m.group("qid") is not None:
            out.append(("column", m.group("qid")))
        elif m.group("op") is not None:
            out.append(("op", m.group("op")))
        else:
            word = m.group("word")
            kind = "kw" if word.lower() in _KEYWORDS else "column"
            out.append((kind, word.lower() if kind == "kw" else word))
    return out


class _Parser:
    def __init__(self, text: str, df: pd.DataFrame) -> None:
        self.toks = _tokens(text)
        self.i = 0
        self.df = df

    # -------------------------------------------------------------- token helpers
    def peek(self, kind: str, value: Any = None) -> bool:
        if self.i >= len(self.toks):
            return False
        k, v = self.toks[self.i]
        return k == kind and (value is None or v == value)

    def take(self, kind: str, value: Any = None) -> Any:
        if not self.peek(kind, value):
            got = self.toks[self.i][1] if self.i < len(self.toks) else "the end"
            raise WhereError(f"expected {value or kind} but found {got!r}")
        self.i += 1
        return self.toks[self.i - 1][1]

    # -------------------------------------------------------------- grammar
    def parse(self) -> pd.Series:
        mask = self.or_()
        if self.i != len(self.toks):
            raise WhereError(f"unexpected {self.toks[self.i][1]!r} after a complete condition")
        return mask

    def or_(self) -> pd.Series:
        mask = self.and_()
        while self.peek("kw", "or"):
            self.i += 1
            mask = mask | self.and_()
        return mask

    def and_(self) -> pd.Series:
        mask = self.not_()
        while self.peek("kw", "and"):
            self.i += 1
            mask = mask & self.not_()
        return mask

    def not_(self) -> pd.Series:
        if self.peek("kw", "not"):
            self.i += 1
            return ~self.not_()
        if self.peek("op", "("):
            self.i += 1
            mask = self.or_()
            self.take("op", ")")
            return mask
        return self.predicate()

    def operand(self) -> Any:
        if self.peek("column"):
            name = self.take("column")
            if name not in self.df.columns:
                raise WhereError(f"no column {name!r} (columns: "
                                 f"{', '.join(map(str, self.df.columns))})")
            return self.df[name]
        return self.take("value")

    def predicate(self) -> pd.Series:
        left = self.operand()
        negate = False
        if self.peek("kw", "not"):
            self.i += 1
            negate = True
        if self.peek("kw", "is"):
            self.i += 1
            negate = bool(self.peek("kw", "not")) != negate
            if self.peek("kw", "not"):
                self.i += 1
            self.take("kw", "null")
            mask = _series(left, self.df).isna().astype("boolean")
        elif self.peek("kw", "in"):
            self.i += 1
            self.take("op", "(")
            values = [self.take("value")]
            while self.peek("op", ","):
                self.i += 1
                values.append(self.take("value"))
            self.take("op", ")")
            mask = _any(_compare(left, "=", v, self.df) for v in values)
        elif self.peek("kw", "like"):
            self.i += 1
            mask = _like(_series(left, self.df), self.take("value"))
        elif self.peek("kw", "between"):
            self.i += 1
            lo = self.operand()
            self.take("kw", "and")
            hi = self.operand()
            mask = _compare(left, ">=", lo, self.df) & _compare(left, "<=", hi, self.df)
        else:
            if negate:
                raise WhereError("NOT must come before IN, LIKE, BETWEEN or a condition")
            op = self.take("op")
            if op not in ("=", "==", "!=", "<>", "<", "<=", ">", ">="):
                raise WhereError(f"expected a comparison (=, !=, <, >, IN, LIKE ...), got {op!r}")
            return _compare(left, op, self.operand(), self.df)
        return ~mask if negate else mask


def _series(value: Any, df: pd.DataFrame) -> pd.Series:
    return value if isinstance(value, pd.Series) else pd.Series(value, index=df.index)


def _any(masks) -> pd.Series:
    out = None
    for m in masks:
        out = m if out is None else out | m
    return out


def _like(s: pd.Series, pattern: Any) -> pd.Series:
    rx = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in str(pattern))
    return s.astype("string").str.fullmatch(rx, case=False).astype("boolean")


def _compare(left: Any, op: str, right: Any, df: pd.DataFrame) -> pd.Series:
    a, b = _series(left, df), _series(right, df)
    numeric = isinstance(left, float) or isinstance(right, float) or (
        pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b))
    if numeric:
        a, b = pd.to_numeric(a, errors="coerce"), pd.to_numeric(b, errors="coerce")
    else:
        a = a.astype("string").str.strip()
        b = b.astype("string").str.strip()
    ops = {"=": np.equal, "==": np.equal, "!=": np.not_equal, "<>": np.not_equal,
           "<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}
    valid = (a.notna() & b.notna()).to_numpy(dtype=bool)
    out = pd.Series(pd.NA, index=df.index, dtype="boolean")
    out[valid] = ops[op](a[valid].to_numpy(), b[valid].to_numpy())
    return out


def where_mask(df: pd.DataFrame, where: str) -> np.ndarray:
    """The rows of ``df`` that satisfy the filter ``where`` (a boolean array).

    Raises
    ------
    WhereError
        When the filter cannot be parsed or names a missing column.
    """
    if not where or not where.strip():
        raise WhereError("the filter is empty")
    mask = _Parser(where, df).parse()
    return mask.fillna(False).to_numpy(dtype=bool)


def filter_rows(df: pd.DataFrame, where: str | None) -> pd.DataFrame:
    """``df`` reduced to the rows that satisfy ``where`` (all rows when it is None)."""
    if where is None:
        return df
    return df[where_mask(df, where)]
