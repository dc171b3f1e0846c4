"""Run the arithmetic a model writes at sleep time, without running the model's code.

A small model sets up a word problem better than it multiplies: asked for a
program, Qwen2.5-Coder-1.5B wrote a step whose value equals the gold answer for
80 of 198 Multi-Query GSM8K queries (50 contexts), against 38 among its own "A:"
lines with the `solve` prompt. So the `program` sleep prompt asks for one
assignment per line, each with a comment that asks the question its variable
answers, and this module computes the values.

Nothing is executed: each right-hand side is parsed with `ast` and evaluated by
a whitelist of number literals, earlier names, + - * / // % ** (small
exponents), unary minus and round/abs/min/max/int/sum over those. A line outside
that language is skipped and counted; it can never crash a run or do IO.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

_ASSIGNMENT = re.compile(r"^\s*([A-Za-z_]\w*)\s*=\s*([^#=][^#]*?)\s*(?:#\s*(.*?))?\s*$")
_OPERATORS: dict[type[ast.operator], Callable[[Fraction, Fraction], Fraction]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_FUNCTIONS: dict[str, Callable[..., Fraction]] = {
    "round": lambda x, n=Fraction(0): Fraction(round(x, int(n))),
    "abs": abs,
    "min": min,
    "max": max,
    "int": lambda x: Fraction(int(x)),
    "sum": lambda *xs: sum(xs, Fraction(0)),
}
MAX_EXPONENT = 12
MAX_MAGNITUDE = Fraction(10) ** 15  # beyond any word problem: a runaway, not an answer


class NotArithmetic(ValueError):
    pass


@dataclass(frozen=True)
class Step:
    name: str
    expression: str
    question: str  # the comment, or the name in words when there is none
    value: Fraction

    @property
    def answer(self) -> str:
        """Whole numbers exactly; others to 6 significant digits, as answers are compared."""
        if self.value.denominator == 1:
            return str(self.value.numerator)
        return f"{float(self.value):.6g}"


@dataclass(frozen=True)
class Program:
    steps: tuple[Step, ...]
    skipped: int  # assignment lines outside the language, or using an unknown name


def run_program(text: str) -> Program:
    """Evaluate the assignments in `text` in order; later lines see earlier names."""
    names: dict[str, Fraction] = {}
    steps: list[Step] = []
    skipped = 0
    for line in text.splitlines():
        match = _ASSIGNMENT.match(line)
        if not match:
            continue
        name, expression, comment = match.groups()
        try:
            value = evaluate(expression, names)
        except (NotArithmetic, SyntaxError, ZeroDivisionError, OverflowError, ValueError):
            skipped += 1
            continue
        names[name] = value
        question = (comment or "").strip() or name.replace("_", " ")
        steps.append(Step(name, expression.strip(), question, value))
    return Program(tuple(steps), skipped)


def evaluate(expression: str, names: dict[str, Fraction]) -> Fraction:
    return _value(ast.parse(expression.strip(), mode="eval").body, names)


def _value(node: ast.AST, names: dict[str, Fraction]) -> Fraction:
    value = _node_value(node, names)
    if abs(value) > MAX_MAGNITUDE:
        raise NotArithmetic("too large")
    return value


def _node_value(node: ast.AST, names: dict[str, Fraction]) -> Fraction:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        if isinstance(node.value, float) and not math.isfinite(node.value):
            raise NotArithmetic("not finite")
        return Fraction(str(node.value))
    if isinstance(node, ast.Name):
        if node.id not in names:
            raise NotArithmetic(f"unknown name {node.id}")
        return names[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _value(node.operand, names)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        left, right = _value(node.left, names), _value(node.right, names)
        if isinstance(node.op, ast.Pow):
            return _power(left, right)
        if type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](left, right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        function = _FUNCTIONS.get(node.func.id)
        if function is not None and node.args:
            return Fraction(function(*(_value(a, names) for a in node.args)))
    raise NotArithmetic(type(node).__name__)


def _power(base: Fraction, exponent: Fraction) -> Fraction:
    if exponent.denominator != 1 or abs(exponent) > MAX_EXPONENT:
        raise NotArithmetic("only small whole exponents")
    return base ** int(exponent)
