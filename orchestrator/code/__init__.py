"""Pure code handling: source positions, languages, spans, patches and prompts."""
