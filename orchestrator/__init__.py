"""ACE's LLM orchestrator: spans, patches, providers and the fix pipeline; knows nothing of LSP."""
