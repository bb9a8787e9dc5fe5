/** The API keys ACE's providers read from the server's environment, and how to name them. */

export interface ProviderKey {
  readonly env: string;
  readonly label: string;
}

export const PROVIDER_KEYS: readonly ProviderKey[] = [
  { env: "OPENAI_API_KEY", label: "OpenAI" },
  { env: "MISTRAL_API_KEY", label: "Mistral" },
  { env: "ANTHROPIC_API_KEY", label: "Anthropic" },
  { env: "GOOGLE_AI_API_KEY", label: "Google AI (Gemini)" },
];

/** The server's environment: the extension host's, with the stored keys over it. */
export function serverEnvironment(base: NodeJS.ProcessEnv, keys: Readonly<Record<string, string>>): NodeJS.ProcessEnv {
  return { ...base, ...keys };
}
