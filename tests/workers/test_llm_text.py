"""Text sources: your own .txt, .jsonl and .parquet files, split by document into disjoint distill, score
and eval sets that do not depend on the machine, and fingerprinted by their content."""

from __future__ import annotations

import json

import pytest

from blocknas.workers.llm.text import (
    SPLITS,
    ByteTokenizer,
    TextError,
    TextSettings,
    split_documents,
    text_fingerprint,
    windows,
)

DOCUMENTS = [f"document {i}: " + "the quick brown fox jumps over the lazy dog. " * (1 + i % 5) for i in range(300)]


def _write(kind: str, folder):
    folder.mkdir()
    if kind == "txt":
        for i, text in enumerate(DOCUMENTS):
            (folder / f"{i:03d}.txt").write_text(text)
    elif kind == "jsonl":
        for part in range(3):
            lines = [json.dumps({"content": t, "n": i}) for i, t in enumerate(DOCUMENTS) if i % 3 == part]
            (folder / f"part{part}.jsonl").write_text("\n".join(lines) + "\n")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"content": DOCUMENTS[:150]}), folder / "a.parquet")
        pq.write_table(pa.table({"content": DOCUMENTS[150:]}), folder / "b.parquet")
    return TextSettings(kind=kind, path=str(folder), field="content")


@pytest.mark.parametrize("kind", ["txt", "jsonl", "parquet"])
def test_each_source_splits_its_documents_disjointly_and_reads_them_all(tmp_path, kind):
    source = _write(kind, tmp_path / kind)
    splits = {split: split_documents(split, source) for split in SPLITS}
    names = [name for documents in splits.values() for name, _ in documents]
    assert len(names) == len(set(names)) == len(DOCUMENTS)  # every document in exactly one split
    assert sorted(read() for documents in splits.values() for _, read in documents) == sorted(DOCUMENTS)
    assert len(splits["distill"]) > len(splits["score"]) > 0 and len(splits["eval"]) > 0
    again = {split: [n for n, _ in split_documents(split, source)] for split in SPLITS}
    assert again == {split: [n for n, _ in documents] for split, documents in splits.items()}
    text = ByteTokenizer().decode(windows("score", ByteTokenizer().encode, 64, 4, source=source)[0].tolist())
    assert "the quick brown fox" in text or "document" in text


def test_the_fingerprint_follows_the_content(tmp_path):
    source = _write("jsonl", tmp_path / "text")
    before = text_fingerprint(source)
    assert text_fingerprint(source) == before
    part = tmp_path / "text" / "part1.jsonl"
    part.write_text(part.read_text().replace("lazy", "sleepy", 1))
    assert text_fingerprint(source)[1] != before[1] and text_fingerprint(source)[0] == before[0]


def test_bad_text_is_refused_naming_the_file(tmp_path):
    source = _write("txt", tmp_path / "text")
    (tmp_path / "text" / "007.txt").write_bytes(b"caf\xe9")
    with pytest.raises(TextError, match=r"007.txt is not UTF-8 text \(byte 3\)"):
        windows("distill", ByteTokenizer().encode, 8, 4000, source=source)
    (tmp_path / "text" / "007.txt").write_text("  \n")
    with pytest.raises(TextError, match="007.txt is empty"):
        text_fingerprint(source)
    with pytest.raises(TextError, match=r"fewer than the 1,000,000 asked for \(1000 windows of 1000\)"):
        windows("eval", ByteTokenizer().encode, 1000, 1000, source=_write("jsonl", tmp_path / "j"))
    with pytest.raises(TextError, match="does not exist"):
        split_documents("eval", TextSettings(kind="txt", path=str(tmp_path / "nowhere")))


def test_conversations_are_rendered_by_the_parents_chat_template(tmp_path):
    pytest.importorskip("transformers", reason="a parent's tokenizer needs the llm extra")
    from transformers import AutoTokenizer

    from blocknas.workers.llm.hf import ParentError, hf_encoder
    from tests.hf_models import save_tokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(save_tokenizer(tmp_path / "tokenizer")))
    (tmp_path / "chats").mkdir()
    with (tmp_path / "chats" / "chats.jsonl").open("w") as out:
        for i, text in enumerate(DOCUMENTS):
            messages = [{"role": "user", "content": f"question {i}?"}, {"role": "assistant", "content": text}]
            out.write(json.dumps({"messages": messages, "text": text}) + "\n")
    chats = TextSettings(kind="jsonl", path=str(tmp_path / "chats"), field="messages", chat=True)
    with pytest.raises(ParentError, match="its tokenizer has none"):
        windows("distill", hf_encoder(tokenizer), 32, 4, source=chats)
    tokenizer.chat_template = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    rendered = tokenizer.decode(windows("distill", hf_encoder(tokenizer), 256, 4, source=chats).flatten().tolist())
    assert "<|user|>question" in rendered and "<|assistant|>document" in rendered
    with pytest.raises(TextError, match="'text' is not a conversation"):
        split_documents("distill", TextSettings(kind="jsonl", path=str(tmp_path / "chats"), field="text", chat=True))
    with pytest.raises(TextError, match="no chat template"):
        windows("distill", ByteTokenizer().encode, 32, 4, source=chats)
