#!/usr/bin/env python3
"""llama.cpp side of scripts/bench-llm: same prompts, same measurements as
server/llm/benches/llm.rs, printed as one JSON line.

`bench_llm_peer.py MODEL THREADS --batched`: llama.cpp's own batched path (several sequences
in one llama_batch, through llama-cpp-python's low-level API), on the streams of the Rust
bench's `--batched` run: the shared head is computed once for sequence 0 and shared with the
others by llama_memory_seq_cp (as llama.cpp's batched example and server do), each stream's own
text goes in as one batch, then every decode step is one llama_decode of all streams."""
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


def batched(path, threads):
    import ctypes

    import llama_cpp as lc
    import numpy as np

    lc.llama_backend_init()
    model = lc.llama_model_load_from_file(path.encode(), lc.llama_model_default_params())
    params = lc.llama_context_default_params()
    params.n_ctx = 16 * 544
    params.n_batch = 2048
    params.n_ubatch = 512
    params.n_seq_max = 16
    params.n_threads = threads
    params.n_threads_batch = threads
    if hasattr(params, "kv_unified"):
        params.kv_unified = True
    ctx = lc.llama_init_from_model(model, params)
    vocab = lc.llama_model_get_vocab(model)
    n_vocab = lc.llama_vocab_n_tokens(vocab)
    memory = lc.llama_get_memory(ctx)

    def tokenize(text):
        raw = text.encode()
        out = (lc.llama_token * (len(raw) + 16))()
        n = lc.llama_tokenize(vocab, raw, len(raw), out, len(out), True, False)
        return list(out[:n])

    def grow(start, tokens, filler):
        text, n = start, 0
        while len(tokenize(text)) < tokens:
            text += filler(n)
            n += 1
        return text

    def stream_prompts(salt, streams, shared, total):
        head = grow(f"Town log {salt}. ", shared, lambda n: f"Entry {n}: the baker lights the oven, the mayor reads the paper, and the river carries mist past the park. ")
        prompts = [grow(f"{head}Stream {s} says: ", total, lambda n, s=s: f"agent {s} walks to place {n} and greets neighbour {s * 7 + n}. ") for s in range(streams)]
        return tokenize(head), [tokenize(p) for p in prompts]

    batch = lc.llama_batch_init(2048, 0, 16)

    def decode(items):
        """items: (token, pos, seq, wants_logits); in slices of n_batch. Returns logits rows."""
        rows = {}
        for start in range(0, len(items), 2048):
            part = items[start:start + 2048]
            batch.n_tokens = len(part)
            for i, (tok, pos, seq, want) in enumerate(part):
                batch.token[i] = tok
                batch.pos[i] = pos
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = seq
                batch.logits[i] = want
            if lc.llama_decode(ctx, batch) != 0:
                raise RuntimeError("llama_decode failed")
            for i, (_, _, seq, want) in enumerate(part):
                if want:
                    rows[seq] = np.ctypeslib.as_array(lc.llama_get_logits_ith(ctx, i), shape=(n_vocab,))
        return rows

    def run(salt, streams, shared, total, max_tokens):
        lc.llama_memory_clear(memory, True)
        head, prompts = stream_prompts(salt, streams, shared, total)
        common = 0
        while all(len(p) > common and p[common] == head[common] for p in prompts) and common < len(head):
            common += 1
        decode([(t, i, 0, False) for i, t in enumerate(prompts[0][:common])])
        for s in range(1, streams):
            lc.llama_memory_seq_cp(memory, 0, s, -1, -1)
        rows = decode([(t, common + k, s, k == len(p) - common - 1) for s, p in enumerate(prompts) for k, t in enumerate(p[common:])])
        nxt = {s: int(np.argmax(rows[s])) for s in range(streams)}
        pos = {s: len(p) for s, p in enumerate(prompts)}
        steps = []
        for _ in range(max_tokens - 1):
            t0 = time.perf_counter()
            rows = decode([(nxt[s], pos[s], s, True) for s in range(streams)])
            nxt = {s: int(np.argmax(rows[s])) for s in range(streams)}
            steps.append(time.perf_counter() - t0)
            for s in range(streams):
                pos[s] += 1
        return len(prompts[0]), steps

    out = []
    for salt, streams in enumerate([1, 4, 8, 16]):
        tokens, steps = run(salt, streams, 150, 230, 64)
        ms = sorted(s * 1e3 for s in steps)
        out.append({
            "streams": streams,
            "prompt_tokens": tokens,
            "aggregate_decode_tps": round(streams * len(steps) / sum(steps), 1),
            "step_ms_mean": round(sum(ms) / len(ms), 1),
            "step_ms_p99": round(ms[round(0.99 * (len(ms) - 1))], 1),
        })
    run(99, 16, 16, 512, 1)
    print(json.dumps({
        "engine": "llama.cpp",
        "threads": threads,
        "batched": out,
        "peak_rss_mb_16x512": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }))


if __name__ == "__main__":
    if "--batched" in sys.argv:
        batched(sys.argv[1], int(sys.argv[2]))
    else:
        main()
