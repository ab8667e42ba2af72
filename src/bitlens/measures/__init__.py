"""Information measures, one module per measure."""
