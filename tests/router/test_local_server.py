"""The real embedded model behind llama.cpp, driven by the real `openai` client."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import openai
import pytest

from router.errors import LocalServerError
from router.local_server import LocalServer, LocalServerConfig

pytestmark = pytest.mark.integration


def client_for(server: LocalServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)


def test_real_answer_with_real_usage(local_server: LocalServer) -> None:
    reply = client_for(local_server).chat.completions.create(
        model=local_server.model,
        messages=[{"role": "user", "content": "What is 7 times 6? Reply with the number only."}],
        max_tokens=8,
        temperature=0,
    )
    assert "42" in reply.choices[0].message.content
    assert reply.usage.prompt_tokens > 10
    assert 1 <= reply.usage.completion_tokens <= 8


def test_streamed_answer_ends_with_usage(local_server: LocalServer) -> None:
    stream = client_for(local_server).chat.completions.create(
        model=local_server.model,
        messages=[{"role": "user", "content": "Count from 1 to 5, separated by spaces."}],
        max_tokens=24,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "1" in text and "5" in text
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) > 3
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 3


def test_models_lists_the_alias(local_server: LocalServer) -> None:
    ids = [m.id for m in client_for(local_server).models.list()]
    assert local_server.model in ids


def test_stop_ends_the_process(local_server: LocalServer) -> None:
    server = LocalServer(local_server.config).start()
    pid = server.pid
    server.stop()
    assert pid is not None and not _alive(pid)


def test_unloadable_model_fails_fast_with_the_reason(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a gguf file" * 100)
    config = LocalServerConfig(bogus, "bogus", start_timeout_s=60, log_dir=tmp_path)
    started = time.monotonic()
    with pytest.raises(LocalServerError, match="exited with code"):
        LocalServer(config).start()
    assert time.monotonic() - started < 30


PARENT = textwrap.dedent("""
    import sys, threading
    from router.local_server import LocalServer, LocalServerConfig
    from pathlib import Path
    config = LocalServerConfig(Path(sys.argv[1]), "m", log_dir=Path(sys.argv[2]))
    server = LocalServer(config).start()
    print(server.pid, flush=True)
    threading.Event().wait()
""")


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT])
def test_no_orphan_when_the_parent_dies(
    local_server: LocalServer, tmp_path: Path, how: int
) -> None:
    # A job started in the background by a non-interactive shell (`cmd &`) inherits SIGINT
    # ignored, and Python then never raises KeyboardInterrupt: give the parent the default
    # disposition, as a terminal's process would have.
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(local_server.config.model_path), str(tmp_path)],
        stdout=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    child_pid = int(parent.stdout.readline())
    assert _alive(child_pid)
    parent.send_signal(how)
    parent.wait(30)
    deadline = time.monotonic() + 15
    while _alive(child_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child_pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split()[2] == "Z")
