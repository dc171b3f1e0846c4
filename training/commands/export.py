"""`sleeptime export`: the proxy's labeled requests as an outcome table, for retraining.

Reads the proxy's store (`--db`, by default the one `sleeptime serve` uses) and writes,
for each request that has a correctness label (POST /v1/feedback), one row of
`outcomes.csv.gz` in the format `sleeptime collect` writes, and `run.json` saying where
the rows came from, what was assumed and what the store cannot give back.

Per request:
  context_id          "<tenant hash>:<context id>:v<version>": a context belongs to a
                      tenant, and a new version is new text
  query_id            the request id
  sleep_passes        full: 0; enriched: --sleep-passes (the store does not keep how many
                      passes a context had; 1, the proxy's default)
  rung                the ladder rung the router chose; when it chose none (the client's
                      own parameters went upstream): --unset-rung, by default the top rung,
                      since the full route is "c with a high budget" (DESIGN.md)
  correct             the label; predicted and gold stay empty
  tokens, latency     from the record; sleep completion tokens from the context, when it
                      is still at the version the request used (else 0, counted)
  queries_in_context  the store's requests for that context version, labeled or not

Skipped, and counted: unlabeled requests; the cached route (it served an anticipated
answer without a rung: in collect's tables the cached route is a column of the features
table, built from query texts the store does not keep); error responses (status 400 and
up: nothing to grade); requests without a context (unless --include-no-context: each is
then a context of its own, answered on the full route).

Not in the store, so not in the folder: query texts, gold and predicted answers,
truncation, sleep prompt tokens and latency, each sleep pass. `sleeptime report` reads
the folder; `predictability` and `train` also need `contexts.jsonl.gz` and
`sleep.jsonl.gz`, which only `sleeptime collect` writes, and they replay full
information (every action for every query), where the proxy saw one action per query.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

from router.ladder import LADDER, rung
from router.settings import load_settings, safe_url
from router.store import SQLITE, open_store, sqlite_path, store_url_of
from router.store.base import ContextRecord, RequestRecord, StoreError, StoreReader
from training.outcomes import OUTCOMES, RUN, Outcome, write_outcomes

DATASET = "proxy"
MISSING = [
    "query texts and answers (predicted, gold): features.csv.gz cannot be built",
    "contexts.jsonl.gz and sleep.jsonl.gz (each sleep pass), which predictability and train read",
    "truncation, sleep prompt tokens, sleep latency (written as false / 0)",
    "the actions not taken: one action per query, not collect's full information",
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="sleeptime export",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--store", help="the proxy's store URL (default: serve's default)")
    parser.add_argument("--db", type=Path, help="a SQLite store's file (as --store sqlite:///DB)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--tenant-hash", help="only this tenant (a t-... hash from the store)")
    parser.add_argument(
        "--sleep-passes", type=int, default=1,
        help="sleep passes the proxy ran per context: the store does not keep them (default 1)",
    )  # fmt: skip
    parser.add_argument(
        "--unset-rung",
        type=int,
        default=LADDER[-1].level,
        choices=[r.level for r in LADDER],
        help="the rung of a request whose router chose none, by level: "
        + " ".join(f"{r.level}={r.name}" for r in LADDER)
        + f" (default {LADDER[-1].level}, the top rung)",
    )
    parser.add_argument(
        "--include-no-context", action="store_true",
        help="also export requests without a context, each as a context of its own",
    )  # fmt: skip
    parser.add_argument("--config", default=None, help="a TOML settings file")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = load_settings(args.config)
    url = args.store or (f"{SQLITE}{args.db}" if args.db else store_url_of(settings))
    db = sqlite_path(url)
    if db is not None and not db.is_file():  # opening would create an empty store
        raise StoreError(f"no proxy store at {db}: pass --store, or run `sleeptime serve` first")
    store = open_store(url)
    try:
        summary = export(
            store,
            args.out,
            tenant=args.tenant_hash,
            passes=args.sleep_passes,
            unset_rung=args.unset_rung,
            include_no_context=args.include_no_context,
            source=str(db) if db is not None else safe_url(url),
        )
    finally:
        store.close()
    print(json.dumps(summary, indent=2) if args.json else _text(summary))
    return 0


def export(
    store: StoreReader,
    out: Path,
    *,
    tenant: str | None = None,
    passes: int = 1,
    unset_rung: int = LADDER[-1].level,
    include_no_context: bool = False,
    source: str = "",
) -> dict[str, Any]:
    """Writes `out/outcomes.csv.gz` and `out/run.json`; returns the summary run.json keeps."""
    labeled = store.labeled_requests(tenant)
    counts = store.request_counts(tenant)
    contexts: dict[tuple[str, str], ContextRecord | None] = {}
    skipped: Counter[str] = Counter()
    rows: list[Outcome] = []
    stale = 0  # enriched on a context that has changed since: its sleep tokens are gone
    for record, correct in labeled:
        reason = skip_reason(record, include_no_context)
        if reason is not None:
            skipped[reason] += 1
            continue
        context = _context(store, contexts, record)
        stale += record.route == "enriched" and not _same_version(context, record)
        key = (record.tenant, record.context_id, record.context_version)
        queries = counts.get(key, 1) if record.context_id is not None else 1
        rows.append(outcome(record, correct, context, queries, passes, unset_rung))
    out.mkdir(parents=True, exist_ok=True)
    write_outcomes(out / OUTCOMES, rows)
    summary = _summary(rows, labeled, sum(counts.values()), skipped)
    summary |= {
        "source": source,
        "tenant": tenant or "all",
        "sleep_tokens_unknown": stale,
        "assumed": {"sleep_passes": passes, "unset_rung": unset_rung},
        "missing": MISSING,
    }
    (out / RUN).write_text(json.dumps(summary, indent=2))
    return summary


def skip_reason(record: RequestRecord, include_no_context: bool = False) -> str | None:
    if record.status >= 400:
        return "error response"
    if record.route == "cached":
        return "cached route"
    if record.route not in ("full", "enriched"):
        return f"route {record.route}"
    if record.context_id is None and not include_no_context:
        return "no context"
    if record.rung is not None and record.rung not in {r.name for r in LADDER}:
        return f"rung {record.rung}"
    return None


def outcome(
    record: RequestRecord,
    correct: bool,
    context: ContextRecord | None,
    queries: int,
    passes: int = 1,
    unset_rung: int = LADDER[-1].level,
) -> Outcome:
    enriched = record.route == "enriched"
    sleep_tokens = context.sleep_tokens if enriched and _same_version(context, record) else 0
    return Outcome(
        dataset=DATASET,
        context_id=context_key(record),
        query_id=record.request_id,
        query_kind=DATASET,
        queries_in_context=queries,
        sleep_passes=passes if enriched else 0,
        rung=rung(record.rung).level if record.rung else unset_rung,
        correct=correct,
        truncated=False,
        predicted="",
        gold="",
        test_prompt_tokens=record.prompt_tokens,
        test_cached_prompt_tokens=record.cached_tokens,
        test_completion_tokens=record.completion_tokens,
        test_latency_s=round(record.latency_ms / 1000.0, 4),
        sleep_prompt_tokens=0,
        sleep_completion_tokens=sleep_tokens,
        sleep_latency_s=0.0,
    )


def context_key(record: RequestRecord) -> str:
    """Tenant-scoped and versioned; a request without a context is a context of its own."""
    if record.context_id is None:
        return f"{record.tenant}:{record.request_id}"
    return f"{record.tenant}:{record.context_id}:v{record.context_version or 1}"


def _context(
    store: StoreReader,
    known: dict[tuple[str, str], ContextRecord | None],
    record: RequestRecord,
) -> ContextRecord | None:
    if record.context_id is None:
        return None
    key = (record.tenant, record.context_id)
    if key not in known:
        known[key] = store.get_context(*key)
    return known[key]


def _same_version(context: ContextRecord | None, record: RequestRecord) -> bool:
    return context is not None and context.version == record.context_version


def _summary(
    rows: list[Outcome],
    labeled: list[tuple[RequestRecord, bool]],
    requests: int,
    skipped: Counter[str],
) -> dict[str, Any]:
    return {
        "dataset": DATASET,
        "model": ",".join(sorted({r.model for r, _ in labeled if r.model})),
        "requests": requests,
        "labeled": len(labeled),
        "unlabeled": requests - len(labeled),
        "rows": len(rows),
        "contexts": len({row.context_id for row in rows}),
        "accuracy": round(sum(r.correct for r in rows) / len(rows), 4) if rows else None,
        "routes": dict(Counter("enriched" if r.sleep_passes else "full" for r in rows)),
        "skipped": dict(sorted(skipped.items())),
    }


def _text(s: dict[str, Any]) -> str:
    routes = ", ".join(f"{n} {route}" for route, n in sorted(s["routes"].items())) or "none"
    skipped = ", ".join(f"{n} {why}" for why, n in s["skipped"].items())
    lines = [
        f"{s['rows']} outcomes from {s['labeled']} labeled of {s['requests']} requests "
        f"({s['contexts']} contexts, accuracy {s['accuracy']}) <- {s['source']}",
        f"  routes: {routes}",
        f"  not exported: {s['unlabeled']} unlabeled" + (f", {skipped}" if skipped else ""),
        *(
            [f"  {s['sleep_tokens_unknown']} enriched on a context changed since: sleep tokens 0"]
            if s["sleep_tokens_unknown"]
            else []
        ),
        "  `sleeptime report` reads this folder; `predictability` and `train` also need query",
        "  texts, gold answers and sleep passes, which the proxy does not keep (run.json).",
    ]
    return "\n".join(lines)
