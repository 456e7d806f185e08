#!/usr/bin/env python3
"""llama.cpp side of scripts/bench-llm: same prompts, same measurements as
server/llm/benches/llm.rs, printed as one JSON line."""
import json
import resource
import sys
import time

from llama_cpp import Llama


def prompt(salt):
    text = f"Run {salt}. "
    while len(text) < 1100:
        text += ("Maple Hollow wakes slowly: the baker lights the oven, the mayor reads the paper, "
                 "and the river carries mist past the park where the gardener trims the roses. ")
    return text


def main():
    path, threads = sys.argv[1], int(sys.argv[2])
    t0 = time.perf_counter()
    llm = Llama(model_path=path, n_ctx=4096, n_threads=threads, n_threads_batch=threads, n_batch=512, verbose=False)
    load_s = time.perf_counter() - t0

    def run(salt, max_tokens):
        ids = llm.tokenize(prompt(salt).encode(), add_bos=True, special=False)
        llm.reset()
        start = time.perf_counter()
        llm.eval(ids)
        produced = 0
        for _ in range(max_tokens - 1):
            tok = llm.sample(temp=0.0)
            llm.eval([tok])
            produced += 1
        return len(ids), time.perf_counter() - start, produced

    run(0, 2)
    n, s = 0, 0.0
    for salt in (1, 2, 3):
        k, t, _ = run(salt, 1)
        n += k
        s += t
    _, one, _ = run(10, 1)
    _, full, produced = run(1010, 65)
    print(json.dumps({
        "engine": "llama.cpp",
        "prompt_tokens": n // 3,
        "prefill_tps": round(n / s, 1),
        "decode_tps": round(produced / max(full - one, 1e-9), 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "load_s": round(load_s, 2),
        "threads": threads,
    }))


if __name__ == "__main__":
    main()
