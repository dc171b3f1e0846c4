"""Reading a sleep pass: the model's free text into notes and anticipated answers.

Model output is free text in a light line format. Parsing repairs what it can (missing
headers, numbering, markdown) and rejects what it cannot (a question without an answer
the context's format can read); nothing a model writes can crash a run. A `program`
pass is evaluated by `router.program`, never run; a re-asked pass (`SleepBudget.reask`)
is read against the questions it was given.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from router.answer_formats import AnswerFormat, answer_format
from router.anticipated import Anticipated
from router.program import run_program
from router.sleep_votes import ParsedPass

PROGRAM_PROMPTS = frozenset({"program"})  # their passes are parsed by parse_program

_HEADER = re.compile(r"^\W*(notes|questions)\W*:?\W*$", re.IGNORECASE)
_QUESTION = re.compile(r"^\W*q(?:uestion)?\s*\d*\s*[:.)]\**\s*(.+)$", re.IGNORECASE)
_NUMBERED_QUESTION = re.compile(r"^\W*\d+[.)]\s*(.+\?)\W*$")
_ANSWER = re.compile(r"^\W*a(?:nswer)?\s*\d*\s*[:.)]\**\s*(.+)$", re.IGNORECASE)
_WORK = re.compile(r"^\W*work\s*[:.]\**\s*(.+)$", re.IGNORECASE)
_NUMBERED_LINE = re.compile(
    r"^\W*([qa])(?:uestion|nswer)?\s*(\d*)\s*[:.)]\**\s*(.*)$", re.IGNORECASE
)


def parse_program(raw: str) -> ParsedPass:
    """Every computed step is a note and an anticipated question with its exact value;
    the values are ours (router.program), so the model's arithmetic cannot be wrong."""
    program = run_program(raw)
    notes = tuple(f"{s.name} = {s.expression} = {s.answer}" for s in program.steps)
    anticipated = tuple(Anticipated(s.question, s.answer) for s in program.steps)
    return ParsedPass(notes, anticipated, program.skipped)


def parse_pass(raw: str, prompt: str = "solve", fmt: AnswerFormat | None = None) -> ParsedPass:
    """Tolerates missing headers, numbered questions, markdown bold and stray prose; an
    answer is read as the context's format reads one (a number by default)."""
    fmt = fmt or answer_format(None)
    if prompt in PROGRAM_PROMPTS:
        return parse_program(raw)
    notes: list[str] = []
    found: list[Anticipated] = []
    rejected = 0
    question: str | None = None
    section = "notes"
    for line in (ln.strip() for ln in raw.splitlines()):
        if not line:
            continue
        header = _HEADER.match(line)
        if header:
            section = header.group(1).lower()
            continue
        q = _QUESTION.match(line) or _NUMBERED_QUESTION.match(line)
        a = _ANSWER.match(line)
        if q and not line.lower().startswith(("a:", "answer")):
            rejected += question is not None
            question, section = q.group(1).strip(" *"), "questions"
        elif a and question is not None:
            value = fmt.extract(a.group(1), True)
            if value is None:
                rejected += 1
            else:
                found.append(Anticipated(question, value))
            question = None
        elif section == "notes" and not _WORK.match(line):
            notes.append(line.lstrip("-*• ").strip())
    rejected += question is not None
    return ParsedPass(tuple(n for n in notes if n), tuple(found), rejected)


def parse_reasked(raw: str, questions: Sequence[str], fmt: AnswerFormat) -> ParsedPass:
    """Answers to `questions`, by their numbers ("A2: ..."; an unnumbered "A:" answers the
    question last named), kept under the questions' own wording so that votes meet exactly
    however the model copied them. A question with no readable answer counts as rejected;
    an answer to a number nobody asked, or a second answer to one, is ignored."""
    answers: dict[int, str] = {}
    current = 0
    for line in (ln.strip() for ln in raw.splitlines()):
        found = _NUMBERED_LINE.match(line)
        if not found:
            continue
        kind, number, rest = found.group(1).lower(), found.group(2), found.group(3)
        index = int(number) if number else current
        if kind == "q":
            current = index
            continue
        if 1 <= index <= len(questions) and index not in answers:
            value = fmt.extract(rest, True)
            if value is not None:
                answers[index] = value
    anticipated = tuple(Anticipated(questions[i - 1], answers[i]) for i in sorted(answers))
    return ParsedPass((), anticipated, len(questions) - len(answers))
