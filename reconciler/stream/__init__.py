"""The request stream: a job's requests as one ordered stream of JSONL lines.

A batch job is a container; the unit users care about is the request. This package holds
everything that works on requests as a stream, whatever their source:

    model.py     Cursor, Shard, Failure, ...: plain frozen data (imports nothing else)
    sources.py   every input source as one currency: an iterator of request lines (bytes,
                 each ending in "\\n"), in input order -- local files (read in blocks),
                 inline ``requests`` (their canonical JSON), generated rows
    shards.py    greedy shard cutting within ``limits`` (pure; incremental, line by line or
                 a whole block of lines at once), and the per-shard JobSpec
    build.py     a shard's lines (or the subset a retry set names) streamed into a
                 content-addressed file under ``<root>/.reconciler/cache/`` for upload
    retry.py     which requests of a finished job form the next retry job (pure)
    results.py   stream-parse result and error files; the result cache (the I/O edge)
    capacity.py  which creates go now and which wait for workspace capacity (pure)
    merge.py     ``outputs``: every shard and retry merged to one line per custom_id,
                 sorted, in constant memory (external sort)
    cache.py     the ``.reconciler/cache`` folder: opened without following links

Everything but ``build``, ``results`` and ``cache`` is pure: plain data in, plain data out.
Memory never grows with the input: lines are streamed, and what is held is bounded by one
job's limits (a retry set holds failures, not the input).
"""
