"""A study on PostgreSQL shared by worker processes, as `train --workers N` runs one on
`--storage postgresql://...`."""

from __future__ import annotations

from pg_server import PgServer

from policies import Learned
from policies.space import Choices
from training.search import finished_trials, open_storage, run_study


def test_two_workers_share_a_study_on_postgresql(pg: PgServer) -> None:
    url = pg.create_database()
    assert open_storage(url).startswith("postgresql+psycopg://")  # psycopg 3, not psycopg2
    choices = Choices([0, 3], [0, 1], [1])
    study = run_study(
        lambda policy: (0.5, float(policy.enriched_rung)),
        storage=url,
        name="shared",
        trials=60,
        seeds=Learned.seeds(choices),
        space=Learned.search_space(choices),
        workers=2,
    )
    numbers = sorted(t.number for t in study.trials)
    assert numbers == list(range(60))
    assert all(t.state.is_finished() for t in study.trials)
    assert finished_trials(url, "shared") == 60
