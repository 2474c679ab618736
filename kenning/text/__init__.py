"""Text as kenning reads it, below the stores: ``loaders`` read a file, ``markup`` locates its
markup once, ``boilerplate`` finds template lines repeated across notes, ``chunking`` cuts it
into ``Chunk`` spans with exact offsets, and ``tokens`` is the one keyword tokenizer."""
