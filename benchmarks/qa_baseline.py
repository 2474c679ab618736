"""An extractive baseline answer file for a QA set, to exercise `kenning eval qa --predictions`.

    python benchmarks/qa_baseline.py ../shared/data/pubmedqa-labeled > /tmp/answers.jsonl
    kenning eval qa ../shared/data/pubmedqa-labeled --predictions /tmp/answers.jsonl

No language model: each answer is the last sentence of the best retrieved passage (where
abstracts tend to state their finding), and it cites that passage. It is a floor to beat,
not an answerer; real answers come with the LLM backends.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from kenning.eval.evaluate import RunConfig, corpus_index
from kenning.eval.qa import load_qa


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("dataset", type=Path)
    ap.add_argument("--split", default="test")
    args = ap.parse_args()
    qa = load_qa(args.dataset, args.split)
    index, names = corpus_index(qa.as_corpus(), args.dataset.resolve().name, RunConfig("hybrid"))
    with index:
        for item in qa.items:
            hits = index.search(item.question, k=1)
            if not hits:
                answer, cited = "", []
            else:
                pid = names[Path(hits[0].path).stem]
                sentences = re.split(r"(?<=[.!?])\s+", qa.passages[pid][1].strip())
                answer, cited = sentences[-1], [pid]
            sys.stdout.write(
                json.dumps({"id": item.qid, "answer": answer, "citations": cited}) + "\n"
            )


if __name__ == "__main__":
    main()
