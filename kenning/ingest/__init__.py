"""Writing to the store: ``sync`` keeps it in line with the roots on disk (files read and
chunked by ``kenning.text``), ``embedding`` computes the vectors of what waits."""
