#!/usr/bin/env python3
"""Writes reference outputs of llama.cpp (llama-cpp-python) for the embedded model's tests:
token ids for sample strings, and next-token log-probabilities after sample prompts.

Usage: scripts/llm-reference.py MODEL.gguf > server/llm/tests/data/llama_cpp_reference.json
Needs llama-cpp-python (see scripts/bench-llm for how it is installed here). The tests compare
against the committed JSON, so CI does not need llama.cpp.
"""
import json
import math
import sys

from llama_cpp import Llama

SAMPLES = [
    "Hello world",
    "The capital of France is",
    "  two leading spaces, and  double  spaces",
    "tabs\tand\nnewlines\n\nand blank lines\n",
    "digits 1234567890 and 3.14159",
    "accents: café, naïve, Ærø, señor",
    "CJK: 你好，世界。こんにちは",
    "emoji: 😀🎉 👩‍👩‍👧",
    "<b>html</b> <div class=\"x\">tags</div>",
    "code: fn main() { println!(\"hi\"); }",
    "Isabella Rodriguez is planning a Valentine's Day party at Hobbs Cafe.",
    "<start_of_turn>user\nnot parsed as special<end_of_turn>",
    "",
    " ",
    "a",
    "\u00a0non-breaking\u00a0space and zero\u200bwidth",
]

PROMPTS = [
    "The capital of France is",
    "Marisol woke up at 6am and went to the",
    "Q: Is the sun hot? Answer yes or no.\nA:",
]


def main():
    model = sys.argv[1]
    llm = Llama(model_path=model, n_ctx=512, n_threads=2, logits_all=True, verbose=False)
    out = {"model": model.split("/")[-1], "tokenize": [], "next_token": []}
    for s in SAMPLES:
        ids = llm.tokenize(s.encode("utf-8"), add_bos=True, special=False)
        out["tokenize"].append({"text": s, "ids": ids})
    for p in PROMPTS:
        ids = llm.tokenize(p.encode("utf-8"), add_bos=True, special=False)
        llm.reset()
        llm.eval(ids)
        logits = llm.scores[len(ids) - 1]
        m = max(logits)
        lse = m + math.log(sum(math.exp(x - m) for x in logits))
        top = sorted(range(len(logits)), key=lambda i: -logits[i])[:5]
        out["next_token"].append({
            "prompt": p,
            "top": [{"id": i, "logprob": float(logits[i] - lse)} for i in top],
        })
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
    print()


if __name__ == "__main__":
    main()
