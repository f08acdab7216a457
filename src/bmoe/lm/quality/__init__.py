"""The quality layer (PolyLink's TIQE, issue 26): a reference-free heuristic score of each response, given by
several validators and combined by their median, beside bmoe's per-expert verification (docs/platform.md).

    bert.py              a BERT encoder in torch, reading a sentence-transformers checkpoint's weights
    sentence_encoder.py  all-MiniLM-L6-v2 from the cache: tokenizer, BERT, mean pooling, unit length
    scorers.py           what a score is: the cosine of the prompt's and the completion's embeddings
    judge.py             validators, the median, the misjudging flag, the threshold, the receipt's section (the
                         rule itself, in integers, is verify/quality_rule.py's: the ledger re-computes it)
    llm_judge.py         the judge language model's yes/no when the median is within a band of the threshold

It checks whether an answer looks *relevant*, not whether the committed computation was *done*: a heuristic, and
labelled as one everywhere it is recorded.

Must not know: the protocol, serving, the ledger, decoding.
"""
