"""From files to stored chunks: ``loaders`` read a file, ``chunking`` cuts it into spans,
``sync`` keeps the store in line with the roots on disk."""
