"""The OpenAI-compatible routes, driven by the official ``openai`` client over a real socket."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openai  # noqa: TID253 - the official client is what these tests drive
import pytest
from serving import make_index, running

from kenning.embedders import HashEmbedder, MiniLMEmbedder
from kenning.serve.security import Security

KEY = "sk-local-test"
QUESTION = "what does the softmax function do?"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[openai.OpenAI]:
    db, _ = make_index(tmp_path_factory.mktemp("openai"))
    with running(db, Security(api_key=KEY)) as server:
        with openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0) as c:
            yield c


def test_models_lists_kenning_and_the_embedder(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["kenning", "kenning-agent", "hash"]


def test_chat_completion_is_a_cited_answer(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="kenning", messages=[{"role": "user", "content": QUESTION}]
    )
    content = reply.choices[0].message.content or ""
    assert reply.choices[0].finish_reason == "stop" and reply.object == "chat.completion"
    assert (
        content.startswith("The softmax function turns scores into probabilities")
        and "[1]" in content
    )
    assert "\n\nSources:\n[1] " in content and "softmax.md (Softmax, lines 5-7)" in content
    citations = (reply.model_extra or {})["citations"]
    assert citations[0]["n"] == 1 and citations[0]["cited"] and citations[0]["doc_id"]
    assert citations[0]["path"].endswith("softmax.md") and citations[0]["lines"] == [5, 7]
    checked = (reply.model_extra or {})["kenning"]["sentences"]
    assert [s["status"] for s in checked] == ["supported"]


def test_streamed_chat_gives_the_same_message_and_citations(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": QUESTION}]
    whole = client.chat.completions.create(model="any-model-name", messages=messages)
    chunks = list(
        client.chat.completions.create(
            model="any-model-name",
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(chunks) >= 4 and text == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop" and last.model == "any-model-name"
    assert (last.model_extra or {})["citations"] == (whole.model_extra or {})["citations"]
    assert last.usage is not None


def test_earlier_turns_make_a_follow_up_stand_alone(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="kenning",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "how is sourdough bread made?"},
            {"role": "assistant", "content": "Feed the starter, mix flour and water. [1]"},
            {"role": "user", "content": [{"type": "text", "text": "and when does it rise?"}]},
        ],
    )
    answer = (reply.model_extra or {})["kenning"]
    assert "sourdough" in answer["query"] and "overnight" in (
        reply.choices[0].message.content or ""
    )


def test_chat_without_a_question_is_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model="kenning", messages=[{"role": "system", "content": "hi"}]
        )
    assert "no user message" in str(refused.value)


def test_embeddings_equal_kenning_s_own_vectors(client: openai.OpenAI) -> None:
    texts = ["softmax turns scores into probabilities", "sourdough rises overnight"]
    own = HashEmbedder().embed_documents(texts)
    got = client.embeddings.create(model="hash", input=texts, encoding_format="float")
    np.testing.assert_array_equal(np.array([d.embedding for d in got.data], np.float32), own)
    raw = client.embeddings.create(model="hash", input=texts, encoding_format="base64")
    decoded = [np.frombuffer(base64.b64decode(str(d.embedding)), "<f4") for d in raw.data]
    np.testing.assert_array_equal(np.array(decoded), own)
    plain = client.embeddings.create(model="hash", input=texts)  # the client's own default
    np.testing.assert_array_equal(np.array([d.embedding for d in plain.data], np.float32), own)
    assert plain.usage.prompt_tokens > 0 and [d.index for d in plain.data] == [0, 1]
    query = client.embeddings.create(
        model="hash", input=texts[0], extra_body={"input_type": "query"}
    )
    np.testing.assert_array_equal(np.array(query.data[0].embedding, np.float32), own[0])


def test_embeddings_refuse_what_they_cannot_do(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="dimensions"):
        client.embeddings.create(model="hash", input="x", dimensions=8)
    with pytest.raises(openai.UnprocessableEntityError):
        client.embeddings.create(model="hash", input=[[1, 2, 3]])  # token arrays


def test_a_wrong_key_is_refused(client: openai.OpenAI) -> None:
    wrong = client.with_options(api_key="sk-wrong")
    with pytest.raises(openai.AuthenticationError):
        wrong.models.list()


@pytest.mark.real_model
def test_the_real_model_embeds_and_answers_through_the_openai_client(tmp_path: Path) -> None:
    db, _ = make_index(tmp_path, embedder="minilm", refuse=None)
    texts = ["Transformers replace recurrence with self-attention.", "x"]
    with running(db) as server:
        with openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0) as c:
            got = c.embeddings.create(model="minilm", input=texts)
            reply = c.chat.completions.create(
                model="kenning", messages=[{"role": "user", "content": QUESTION}]
            )
            own = MiniLMEmbedder().embed_documents(texts)
    vectors = np.array([d.embedding for d in got.data], dtype=np.float32)
    assert vectors.shape == (2, 384)
    np.testing.assert_allclose(vectors, own, atol=1e-6)
    content = reply.choices[0].message.content or ""
    assert "probabilities" in content and "[1]" in content
    answer = (reply.model_extra or {})["kenning"]
    assert not answer["refused"] and answer["sentences"][0]["status"] == "supported"
