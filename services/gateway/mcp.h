/* The MCP endpoint's two halves: the transport and JSON-RPC (mcp.c) and the
 * tools (mcp_tools.c). */
#ifndef SS_GATEWAY_MCP_H
#define SS_GATEWAY_MCP_H

#include <stddef.h>
#include <json-c/json.h>

#include "common/util.h"

/* What one tools/call may answer at most (structuredContent), and its text. */
#define GW_MCP_MAX_RESULT_BYTES (256u * 1024u)
#define GW_MCP_MAX_TEXT_BYTES   2048u

/* Builds the tool list once (the purchase tools only with
 * GATEWAY_MCP_ALLOW_PURCHASE).  Thread-safe; cheap after the first call. */
void gw_mcp_tools_init(void);

/* The listed tools: how many, and the i-th descriptor as JSON text
 * ({"name","title","description","inputSchema","outputSchema","annotations"}). */
size_t gw_mcp_tools_count(void);
const char *gw_mcp_tool_json(size_t i);

/* Runs tool name with args (a JSON object, or NULL for none) and appends the
 * CallToolResult (content, structuredContent, isError) to out.  Returns 0,
 * or -1 when no listed tool has that name (the caller answers -32602), or -2
 * out of memory. */
int gw_mcp_tool_call(const char *name, json_object *args, ss_buf_t *out);

#endif
