-- The API dialect a usage row was served in (issue 17): chat (OpenAI Chat
-- Completions), messages (Anthropic Messages), responses (OpenAI Responses).
ALTER TABLE usage_ledger ADD COLUMN api TEXT NOT NULL DEFAULT 'chat';
