"""`kenning serve`: the JSON API over a real socket, on a real SQLite index.

Most tests share one server on the test notes (hash embedder); those that change the notes
get their own. The OpenAPI schema is snapshot-tested: after an intended change to the API,
regenerate the snapshot with ``KENNING_UPDATE_SNAPSHOTS=1 pytest tests/serve/test_serve.py``.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx2 as httpx
import pytest
from serving import events, make_index, running
from starlette.testclient import TestClient

from kenning import Index
from kenning.errors import (
    ConfigError,
    EmbedderMismatch,
    KenningError,
    MissingExtra,
    ModelCorrupt,
    ModelUnavailable,
    NotFound,
    RemoteLLMError,
    UnknownBackend,
)
from kenning.eval.history import History
from kenning.serve.app import create_app
from kenning.serve.errors import status_of
from kenning.serve.pool import Busy
from kenning.serve.server import start_watch
from kenning.text.loaders import load

SNAPSHOT = Path(__file__).parent / "snapshots" / "openapi.json"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Path]]:
    db, _ = make_index(tmp_path_factory.mktemp("serve"))
    with running(db) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield client, db


def test_search_returns_hits_with_their_document_ids_and_terms(served) -> None:
    client, db = served
    r = client.get("/api/search", params={"q": "softmax probabilities", "k": 3})
    assert r.status_code == 200
    data = r.json()
    assert data["query"] == "softmax probabilities"
    assert data["terms"] == ["softmax", "probabilities"]
    assert data["pending"] == 0 and len(data["hits"]) == 3
    top = data["hits"][0]
    assert top["path"].endswith("softmax.md") and isinstance(top["doc_id"], int)
    assert {"bm25_rank", "dense_rank", "score", "heading", "snippet", "start", "end"} <= top.keys()
    with Index.open(db) as index:  # the same hits as the library gives
        same = [h.to_dict() for h in index.search("softmax probabilities", k=3)]
    assert [{k: v for k, v in h.items() if k != "doc_id"} for h in data["hits"]] == same


def test_search_filters_and_explain(served) -> None:
    client, _ = served
    get = lambda **p: client.get("/api/search", params={"q": "anything", **p}).json()  # noqa: E731
    assert [h["path"].rsplit("/", 1)[1] for h in get(where="tag=cooking")["hits"]] == ["bread.md"]
    assert {h["type"] for h in get(type="html")["hits"]} == {"html"}
    assert all("/ml/" in h["path"] for h in get(path="ml/**")["hits"])
    both = get(where=["tag=ml", "date>=2025-01-01"])["hits"]
    assert [h["path"].rsplit("/", 1)[1] for h in both] == ["attention.md"]
    explained = get(explain="true", mode="bm25", q="softmax")
    assert explained["explain"]["fusion"] == "weighted" and explained["mode"] == "bm25"


def test_errors_are_mapped_to_status_codes_with_one_line_messages(served) -> None:
    client, _ = served
    r = client.get("/api/search", params={"q": "x", "where": "nonsense"})
    assert r.status_code == 400 and r.json()["error"] == "ConfigError"
    assert "KEY=VALUE" in r.json()["detail"] and "\n" not in r.json()["detail"]
    assert client.get("/api/search", params={"q": "x", "mode": "psychic"}).status_code == 422
    assert client.get("/api/search", params={"q": "x", "k": 0}).status_code == 422
    assert client.get("/api/search").status_code == 422


def test_the_one_mapping_covers_the_exception_tree() -> None:
    cases = {
        NotFound("x"): 404,
        ConfigError("x"): 400,
        UnknownBackend("llm", "x", ["a"]): 400,
        MissingExtra("p", "serve"): 503,
        ModelUnavailable("m", "offline"): 503,
        ModelCorrupt("m", "f", "a" * 64, "b" * 64): 503,
        RemoteLLMError("down", "http://x"): 502,
        Busy("x"): 409,
        EmbedderMismatch("i", "hash", 64, "minilm", 384): 500,
        KenningError("x"): 500,
        RuntimeError("x"): 500,
    }
    assert {type(e).__name__: status_of(e) for e in cases} == {
        type(e).__name__: s for e, s in cases.items()
    }


def test_an_unexpected_error_is_a_one_line_500_without_a_traceback(tmp_path: Path) -> None:
    db, _ = make_index(tmp_path)
    app = create_app(db, mcp=False, warm=False)

    def broken() -> None:
        raise RuntimeError("the disk is on fire\nline two")

    app.state.service.status = broken
    with running(db) as server:  # a second app on the same index stays healthy
        assert httpx.get(server.url + "/api/status").status_code == 200
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/api/status")
    assert r.status_code == 500
    assert r.json() == {
        "detail": "RuntimeError: the disk is on fire line two",
        "error": "RuntimeError",
    }
    assert "Traceback" not in r.text


def test_facets_come_from_the_index_metadata(served) -> None:
    client, _ = served
    facets = client.get("/api/facets").json()
    assert facets["tags"] == ["cooking", "ml", "transformers"]
    assert facets["types"] == ["html", "markdown", "text"]
    assert facets["folders"] == ["cooking", "ml", "projects"]
    assert facets["counts"]["tags"]["ml"] == 2


def test_documents_are_indexed_sources_whose_text_the_offsets_index(served) -> None:
    client, _ = served
    for hit in client.get("/api/search", params={"q": "dot product", "k": 5}).json()["hits"]:
        doc = client.get(f"/api/documents/{hit['doc_id']}").json()
        assert doc["doc_id"] == hit["doc_id"] and doc["path"] == hit["path"]
        assert doc["text"][hit["start"] : hit["end"]] == hit["text"]
        assert doc["text"] == load(Path(doc["path"]), Path(doc["path"]).read_bytes()).text
        assert doc["changed"] is False


def raw_get(base: str, path: str) -> int:
    """GET ``path`` exactly as written: no client normalises the dots or the escapes."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


@pytest.mark.parametrize(
    "doc_id",
    [
        "..%2F..%2Fetc%2Fpasswd",
        "../../etc/passwd",
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "%2Fetc%2Fpasswd",
        "999999",
        "-1",
        "1.0",
        "0x1",
        "1%00",
        "%EF%BC%91",  # a full-width digit one: not an id
    ],
)
def test_anything_but_an_indexed_document_id_is_404(served, doc_id: str) -> None:
    client, _ = served
    assert raw_get(str(client.base_url), "/api/documents/" + doc_id) == 404


def test_ask_answers_with_checked_citations_and_keeps_the_conversation(served) -> None:
    client, _ = served
    r = client.post("/api/ask", json={"question": "what does the softmax function do?"})
    assert r.status_code == 200
    answer = r.json()
    assert "[1]" in answer["text"] and not answer["refused"]
    assert answer["sentences"][0]["status"] == "supported"
    assert answer["sentences"][0]["citations"] == [1]
    source = answer["sources"][0]
    assert source["n"] == 1 and source["path"].endswith("softmax.md") and source["lines"] == [5, 7]
    doc = client.get(f"/api/documents/{source['doc_id']}").json()
    assert doc["text"][source["start"] : source["end"]] == source["text"]
    cid = answer["conversation_id"]
    follow = client.post(
        "/api/ask", json={"question": "and what does it sum to?", "conversation_id": cid}
    ).json()
    assert follow["conversation_id"] == cid and "softmax" in follow["query"]
    listed = client.get("/api/conversations").json()["conversations"]
    assert {"id": cid, "turns": 2}.items() <= next(c for c in listed if c["id"] == cid).items()
    convo = client.get(f"/api/conversations/{cid}").json()
    assert [t["question"] for t in convo["turns"]][0] == "what does the softmax function do?"
    assert convo["turns"][0]["answer_json"]["sources"][0]["doc_id"] == source["doc_id"]
    assert client.get("/api/conversations/424242").status_code == 404
    r = client.post("/api/ask", json={"question": "x", "conversation_id": "nope"})
    assert r.status_code == 404
    assert client.post("/api/ask", json={"question": ""}).status_code == 422
    assert client.post("/api/ask", json={"question": "x", "surprise": 1}).status_code == 422


def test_ask_with_filters_only_cites_what_passes_them(served) -> None:
    client, _ = served
    answer = client.post(
        "/api/ask", json={"question": "what rises overnight?", "where": ["tag=cooking"]}
    ).json()
    assert [s["path"].rsplit("/", 1)[1] for s in answer["sources"]] == ["bread.md"]


def test_ask_stream_sends_tokens_then_the_whole_answer(served) -> None:
    client, _ = served
    question = {"question": "how long does the dough rise?"}
    with client.stream("POST", "/api/ask/stream", json=question) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        got = events(r.read().decode())
    names = [name for name, _ in got]
    assert names[-1] == "answer" and set(names[:-1]) == {"token"}
    streamed = "".join(data["text"] for name, data in got if name == "token")
    final = got[-1][1]
    assert streamed.strip() == final["text"].strip() and "[1]" in final["text"]
    assert final["sources"][0]["doc_id"] and final["conversation_id"]
    plain = client.post("/api/ask", json=question).json()
    assert plain["text"] == final["text"]


def test_ask_stream_reports_errors_as_an_error_event(served) -> None:
    client, _ = served
    body = {"question": "x", "conversation_id": "31337"}
    with client.stream("POST", "/api/ask/stream", json=body) as r:
        got = events(r.read().decode())
    assert got == [("error", {"message": got[0][1]["message"], "error": "NotFound", "status": 404})]


def test_status_reports_the_index_and_its_embedding(served) -> None:
    client, _ = served
    status = client.get("/api/status").json()
    assert status["files"] == 5 and status["embedder"] == "hash"
    assert status["embedding"]["pending"] == 0 and "running" in status["embedding"]


def test_sync_reports_changes_as_json_and_as_progress_events(tmp_path: Path) -> None:
    db, root = make_index(tmp_path)
    with running(db) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.post("/api/sync").json()["unchanged"] == 5
        (root / "ml" / "softmax.md").write_text("# Softmax\n\nNow about temperature scaling.\n")
        (root / "new.md").write_text("# New\n\nA brand new note about kites.\n")
        with client.stream("POST", "/api/sync", headers={"Accept": "text/event-stream"}) as r:
            got = events(r.read().decode())
        assert got[-1][0] == "report" and {n for n, _ in got[:-1]} == {"progress"}
        report = got[-1][1]
        assert (report["added"], report["changed"], report["unchanged"]) == (1, 1, 4)
        progress = [d for n, d in got if n == "progress"]
        assert {"stage", "done", "total"} <= progress[-1].keys()
        assert progress[-1]["done"] == progress[-1]["total"]
        hits = client.get("/api/search", params={"q": "kites"}).json()["hits"]
        assert hits[0]["path"].endswith("new.md")


def test_the_evaluation_history_is_listed_and_opened(tmp_path: Path) -> None:
    db, _ = make_index(tmp_path)
    with History(db) as history:
        history.add_run("scifact", "hybrid", {"mode": "hybrid"}, {"ndcg@10": 0.739}, 300)
        history.add_run("scifact", "bm25", {"mode": "bm25"}, {"ndcg@10": 0.69}, 300)
    with running(db) as server, httpx.Client(base_url=server.url) as client:
        runs = client.get("/api/eval/runs").json()["runs"]
        assert [(r["id"], r["config_name"]) for r in runs] == [("1", "hybrid"), ("2", "bm25")]
        assert client.get("/api/eval/runs/2").json()["metrics"] == {"ndcg@10": 0.69}
        assert client.get("/api/eval/runs/3").status_code == 404
        assert client.get("/api/eval/runs/zero").status_code == 404


def test_the_web_page_is_served(served) -> None:
    client, _ = served
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]


NOTE_A = "# Note {i}\n\nThe zebra lantern {i} glows amber in version alpha of this note.\n"
NOTE_B = "# Note {i}\n\nThe zebra lantern {i} hums quietly in version beta, rewritten whole.\n"


def chunk_texts(folder: Path, notes: dict[str, str]) -> set[str]:
    db, _ = make_index(folder, notes)
    with Index.open(db) as index:
        return {h.text for h in index.search("zebra lantern", k=len(notes))}


@pytest.mark.slow
def test_concurrent_searches_during_syncs_see_whole_notes(tmp_path: Path) -> None:
    """Searches from many clients while syncs rewrite every note: no errors, no missing hit,
    and every hit is one version of its note or the other, never a mix."""
    version_a = {f"n{i:02d}.md": NOTE_A.format(i=i) for i in range(40)}
    version_b = {f"n{i:02d}.md": NOTE_B.format(i=i) for i in range(40)}
    valid = chunk_texts(tmp_path / "a", version_a) | chunk_texts(tmp_path / "b", version_b)
    assert len(valid) == 80
    db, root = make_index(tmp_path / "served", version_a)
    failures: list[str] = []
    stop = threading.Event()
    searches = [0]

    def client_loop(url: str) -> None:
        with httpx.Client(base_url=url, timeout=30) as c:
            while not stop.is_set():
                r = c.get("/api/search", params={"q": "zebra lantern amber hums", "k": 10})
                if r.status_code != 200:
                    failures.append(f"{r.status_code} {r.text[:200]}")
                    continue
                hits = r.json()["hits"]
                searches[0] += 1
                if len(hits) != 10:
                    failures.append(f"{len(hits)} hits")
                failures.extend(f"mixed: {h['text']!r}" for h in hits if h["text"] not in valid)

    with running(db) as server, httpx.Client(base_url=server.url, timeout=60) as admin:
        threads = [threading.Thread(target=client_loop, args=(server.url,)) for _ in range(6)]
        for t in threads:
            t.start()
        try:
            for round_ in range(10):
                version = version_b if round_ % 2 == 0 else version_a
                for name, text in version.items():
                    (root / name).write_text(text)
                assert admin.post("/api/sync").json()["changed"] == 40
        finally:
            stop.set()
            for t in threads:
                t.join()
    assert searches[0] > 20 and not failures, failures[:5]


def test_one_sync_at_a_time(tmp_path: Path) -> None:
    db, _ = make_index(tmp_path)
    app = create_app(db, mcp=False, warm=False)
    with app.state.service.pool.writer():
        with pytest.raises(Busy):
            with app.state.service.pool.writer():
                pass
    app.state.service.close()


def test_the_openapi_schema_matches_its_snapshot(served) -> None:
    client, _ = served
    schema = client.get("/api/openapi.json").json()
    schema["info"].pop("version", None)  # the package version moves on its own
    text = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    if os.environ.get("KENNING_UPDATE_SNAPSHOTS"):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(text)
    assert SNAPSHOT.exists(), "no snapshot: run with KENNING_UPDATE_SNAPSHOTS=1 to write it"
    assert json.loads(SNAPSHOT.read_text()) == json.loads(text), (
        "the API changed; if that was intended, run "
        "KENNING_UPDATE_SNAPSHOTS=1 pytest tests/serve/test_serve.py -k openapi and commit "
        "the snapshot"
    )
    paths = set(schema["paths"])
    assert {"/api/search", "/api/ask", "/api/ask/stream", "/api/documents/{doc_id}"} <= paths
    assert {"/v1/chat/completions", "/v1/embeddings", "/v1/models", "/api/sync"} <= paths


def test_watch_keeps_the_served_index_in_step(tmp_path: Path) -> None:
    """`kenning serve --watch`: a watcher thread with its own index syncs what changes."""
    db, root = make_index(tmp_path)
    stop = threading.Event()
    watcher = start_watch(db, None, stop)
    try:
        with running(db) as server, httpx.Client(base_url=server.url, timeout=30) as client:
            time.sleep(0.5)
            (root / "kites.md").write_text("# Kites\n\nFlying kites on a windy beach.\n")
            deadline = time.monotonic() + 30
            while True:
                hits = client.get("/api/search", params={"q": "kites windy beach"}).json()["hits"]
                if hits and hits[0]["path"].endswith("kites.md"):
                    break
                assert time.monotonic() < deadline, "the watcher never indexed the new note"
                time.sleep(0.1)
    finally:
        stop.set()
        watcher.join(timeout=10)
    assert not watcher.is_alive()
