/**
 * Draws a session tree as text (the demo's output, the example agent's
 * `/tree`). Pure: give it the entries and branch heads, get lines back.
 *
 * @example
 *   drawTree(entries, [{ name: "main", head: 4 }], "main")
 *   // ● 3 user: hi
 *   // └─● 4 assistant: hello  ◀ main*
 */
export interface TreeNode {
  readonly id: number
  readonly parentId: number
  readonly summary: string
  readonly label?: string | undefined
}

export function drawTree(
  nodes: ReadonlyArray<TreeNode>,
  branches: ReadonlyArray<{ readonly name: string; readonly head: number }>,
  active: string
): Array<string> {
  const children = new Map<number, Array<TreeNode>>()
  for (const node of nodes) {
    const siblings = children.get(node.parentId) ?? []
    siblings.push(node)
    children.set(node.parentId, siblings)
  }
  const marks = new Map<number, Array<string>>()
  for (const b of branches) {
    const list = marks.get(b.head) ?? []
    list.push(b.name === active ? `${b.name}*` : b.name)
    marks.set(b.head, list)
  }
  const lines: Array<string> = []
  const rootMarks = marks.get(0)
  if (rootMarks !== undefined) lines.push(`○ (root)  ◀ ${rootMarks.join(", ")}`)
  // Iterative depth-first walk: a 10^5-deep branch must not overflow the stack.
  const stack: Array<{ node: TreeNode; prefix: string; connector: string; childPrefix: string }> = []
  const pushChildren = (id: number, prefix: string) => {
    const kids = children.get(id) ?? []
    for (let i = kids.length - 1; i >= 0; i--) {
      const node = kids[i] as TreeNode
      const last = i === kids.length - 1
      const fork = kids.length > 1
      stack.push({
        node,
        prefix,
        connector: fork ? (last ? "└─" : "├─") : "",
        childPrefix: fork ? prefix + (last ? "  " : "│ ") : prefix
      })
    }
  }
  pushChildren(0, "")
  while (stack.length > 0) {
    const { node, prefix, connector, childPrefix } = stack.pop() as (typeof stack)[number]
    const label = node.label !== undefined ? ` [${node.label}]` : ""
    const heads = marks.get(node.id)
    lines.push(`${prefix}${connector}● ${node.id} ${node.summary}${label}${heads !== undefined ? `  ◀ ${heads.join(", ")}` : ""}`)
    pushChildren(node.id, childPrefix)
  }
  return lines
}
