"""Throughput of the exact verifiers (``harness.verifiers``) on synthetic TL;DR-like responses:

- checks per second for every registered verifier (parameters filled with typical values);
- pairwise items per second for constitutions of 3 checks: an item is two responses to one query, each
  verified against all 3 checks (6 checks an item).

    python benchmarks/verifiers.py                  # 1,000 responses, best of 3 runs
"""

from __future__ import annotations

import argparse
import random
import time

import common  # noqa: F401  (puts the repository on sys.path)

from harness.verifiers import parse_check, verifiers, verify
from harness.verifiers.base import COUNT, LETTER, POSITIVE, TEXT, WORDS

VOCABULARY = ("landlord deposit roommate boyfriend girlfriend apartment rent money job boss friend family "
              "parents week month year called asked said wants refuses moved left kept paid late the a and "
              "to of in my our we I he she they is was").split()
TYPICAL = {COUNT: 25, POSITIVE: 2, TEXT: "tl;dr", LETTER: "e", WORDS: ["deposit", "landlord"]}
CONSTITUTIONS = {
    "harness": [{"name": "max_words", "n": 25}, {"name": "no_first_person"}, {"name": "mentions_query_keyword"}],
    "ifeval": [{"name": "no_comma"}, {"name": "exact_bullets", "n": 3}, {"name": "english_lowercase"}],
}


def synthetic_response(rng: random.Random) -> str:
    """10-80 words in sentences, sometimes with digits, commas, bullets, capitals or a closing question."""
    words = [rng.choice(VOCABULARY) for _ in range(rng.randint(10, 80))]
    if rng.random() < 0.3:
        words[rng.randrange(len(words))] = str(rng.randint(1, 2000))
    if rng.random() < 0.3:
        words[rng.randrange(len(words))] += ","
    sentences = [" ".join(words[i:i + 12]) for i in range(0, len(words), 12)]
    if rng.random() < 0.2:
        return "\n".join(f"- {s}" for s in sentences)
    text = ". ".join(s.capitalize() if rng.random() < 0.5 else s for s in sentences)
    return text + ("?" if rng.random() < 0.3 else ".")


def best_seconds(run, repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        timings.append(time.perf_counter() - start)
    return min(timings)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--responses", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    rng = random.Random(0)
    responses = [synthetic_response(rng) for _ in range(args.responses)]
    queries = [synthetic_response(rng) for _ in range(args.responses)]
    items = list(zip(queries, responses, responses[1:] + responses[:1]))

    print(f"checks per second on {len(responses)} synthetic responses (best of {args.repeats}):")
    for name in verifiers.names():
        params = {p.name: TYPICAL[p.kind] for p in verifiers.get(name).params}
        spec = parse_check({"name": name, **params}, "benchmark", name, "check")
        verify(spec, responses[0], queries[0])  # loads lm-eval's checkers before timing
        seconds = best_seconds(lambda spec=spec: [verify(spec, r, q) for r, q in zip(responses, queries)],
                               args.repeats)
        print(f"  {name:<24} {len(responses) / seconds:>12,.0f}")

    print(f"pairwise items per second ({len(items)} items, 2 responses x 3 checks each):")
    for label, checks in CONSTITUTIONS.items():
        specs = [parse_check(c, "benchmark", label, "check") for c in checks]
        seconds = best_seconds(lambda specs=specs: [verify(s, r, q) for q, a, b in items for r in (a, b)
                                                    for s in specs], args.repeats)
        print(f"  {label:<8} {', '.join(c['name'] for c in checks):<52} {len(items) / seconds:>10,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
