"""x0 rag."""
