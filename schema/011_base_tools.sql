-- Letta's base tools become tool records. Until now every agent was offered the built-ins of its
-- type implicitly; now each organization has one record per base tool (tool_type letta_core,
-- letta_memory_core, letta_sleeptime_core), listed by /v1/tools/ and attached to agents like any tool,
-- so they show in an agent's `tools`, can be detached (include_base_tools=false gives none) and
-- attached again. This file gives every existing organization its records and every existing agent
-- the built-ins it was offered before, so nothing an agent could do changes with the upgrade.
-- The descriptions and schemas are those of this release; the server refreshes them when a later
-- release changes a built-in (o/tools/base.py).

CREATE TEMPORARY TABLE base_tools_011 (name text PRIMARY KEY, tool_type text, description text, json_schema jsonb)
    ON COMMIT DROP;
INSERT INTO base_tools_011 VALUES
    ('send_message', 'letta_core', 'Sends a message to the human user.', '{"name": "send_message", "description": "Sends a message to the human user.", "parameters": {"type": "object", "properties": {"message": {"type": "string", "description": "Message contents. All unicode (including emojis) are supported."}}, "required": ["message"]}}'::jsonb),
    ('core_memory_append', 'letta_memory_core', 'Append to the contents of core memory.', '{"name": "core_memory_append", "description": "Append to the contents of core memory.", "parameters": {"type": "object", "properties": {"label": {"type": "string", "description": "Section of the memory to be edited."}, "content": {"type": "string", "description": "Content to write to the memory. All unicode (including emojis) are supported."}}, "required": ["label", "content"]}}'::jsonb),
    ('core_memory_replace', 'letta_memory_core', 'Replace the contents of core memory. To delete memories, use an empty string for new_content.', '{"name": "core_memory_replace", "description": "Replace the contents of core memory. To delete memories, use an empty string for new_content.", "parameters": {"type": "object", "properties": {"label": {"type": "string", "description": "Section of the memory to be edited."}, "old_content": {"type": "string", "description": "String to replace. Must be an exact match."}, "new_content": {"type": "string", "description": "Content to write to the memory."}}, "required": ["label", "old_content", "new_content"]}}'::jsonb),
    ('memory_insert', 'letta_memory_core', 'The memory_insert command allows you to insert text at a specific location in a memory block.', '{"name": "memory_insert", "description": "The memory_insert command allows you to insert text at a specific location in a memory block.", "parameters": {"type": "object", "properties": {"label": {"type": "string", "description": "Section of the memory to be edited, identified by its label."}, "new_str": {"type": "string", "description": "The text to insert. Do not include line number prefixes."}, "insert_line": {"type": "integer", "description": "The line number after which to insert the text (0 for beginning of file). Defaults to -1 (end)."}}, "required": ["label", "new_str"]}}'::jsonb),
    ('memory_replace', 'letta_memory_core', 'The memory_replace command allows you to replace a specific string in a memory block with a new string. old_str must match exactly one place in the block.', '{"name": "memory_replace", "description": "The memory_replace command allows you to replace a specific string in a memory block with a new string. old_str must match exactly one place in the block.", "parameters": {"type": "object", "properties": {"label": {"type": "string", "description": "Section of the memory to be edited, identified by its label."}, "old_str": {"type": "string", "description": "The text to replace (must match exactly, including whitespace)."}, "new_str": {"type": "string", "description": "The new text to insert in place of the old text."}}, "required": ["label", "old_str", "new_str"]}}'::jsonb),
    ('memory_rethink', 'letta_sleeptime_core', 'The memory_rethink command allows you to completely rewrite the contents of a memory block.', '{"name": "memory_rethink", "description": "The memory_rethink command allows you to completely rewrite the contents of a memory block.", "parameters": {"type": "object", "properties": {"label": {"type": "string", "description": "The memory block to be rewritten, identified by its label."}, "new_memory": {"type": "string", "description": "The new memory contents."}}, "required": ["label", "new_memory"]}}'::jsonb),
    ('archival_memory_insert', 'letta_core', 'Add information to long-term archival memory for later retrieval.', '{"name": "archival_memory_insert", "description": "Add information to long-term archival memory for later retrieval.", "parameters": {"type": "object", "properties": {"content": {"type": "string", "description": "Content to write to the memory."}, "tags": {"type": "array", "items": {"type": "string"}, "description": "Optional list of tags."}}, "required": ["content"]}}'::jsonb),
    ('archival_memory_search', 'letta_core', 'Search archival memory using semantic (embedding-based) search with optional tag and date filters.', '{"name": "archival_memory_search", "description": "Search archival memory using semantic (embedding-based) search with optional tag and date filters.", "parameters": {"type": "object", "properties": {"query": {"type": "string", "description": "String to search for using semantic similarity."}, "tags": {"type": "array", "items": {"type": "string"}, "description": "Optional list of tags to filter by."}, "tag_match_mode": {"type": "string", "enum": ["any", "all"]}, "top_k": {"type": "integer", "description": "Maximum number of results to return."}, "start_datetime": {"type": "string", "description": "ISO 8601 lower bound on creation time."}, "end_datetime": {"type": "string", "description": "ISO 8601 upper bound on creation time."}}, "required": ["query"]}}'::jsonb),
    ('conversation_search', 'letta_core', 'Search prior conversation history (recall memory) using hybrid search.', '{"name": "conversation_search", "description": "Search prior conversation history (recall memory) using hybrid search.", "parameters": {"type": "object", "properties": {"query": {"type": "string", "description": "String to search for."}, "roles": {"type": "array", "items": {"type": "string", "enum": ["assistant", "user", "tool"]}}, "limit": {"type": "integer", "description": "Maximum number of results to return."}, "start_date": {"type": "string", "description": "Start of the date range (ISO 8601)."}, "end_date": {"type": "string", "description": "End of the date range (ISO 8601)."}}, "required": ["query"]}}'::jsonb);

-- A custom tool named like a base tool was already run as that base tool when attached: it becomes it.
INSERT INTO tools (id, organization_id, name, description, tool_type, source_type, source_code, json_schema)
SELECT 'tool-' || gen_random_uuid(), o.id, b.name, b.description, b.tool_type, 'python', NULL, b.json_schema
FROM organizations o CROSS JOIN base_tools_011 b
ON CONFLICT (organization_id, name) DO UPDATE
    SET tool_type = EXCLUDED.tool_type, description = EXCLUDED.description, json_schema = EXCLUDED.json_schema,
        version = tools.version + 1, updated_at = now();

INSERT INTO tool_versions (tool_id, version, organization_id, name, description, source_code, json_schema,
                           return_char_limit)
SELECT t.id, t.version, t.organization_id, t.name, t.description, t.source_code, t.json_schema, t.return_char_limit
FROM tools t JOIN base_tools_011 b ON b.name = t.name
ON CONFLICT (tool_id, version) DO NOTHING;

-- Each agent keeps the built-ins its type was offered: memgpt_agent the v1 set, every other type the v2 set.
INSERT INTO agent_tools (agent_id, tool_id)
SELECT a.id, t.id
FROM agents a JOIN tools t ON t.organization_id = a.organization_id
WHERE t.name = ANY(CASE WHEN a.agent_type = 'memgpt_agent' THEN ARRAY['send_message', 'core_memory_append', 'core_memory_replace', 'archival_memory_insert', 'archival_memory_search', 'conversation_search']
                        ELSE ARRAY['send_message', 'memory_insert', 'memory_replace', 'memory_rethink', 'core_memory_append', 'core_memory_replace', 'archival_memory_insert', 'archival_memory_search', 'conversation_search'] END)
ON CONFLICT DO NOTHING;
