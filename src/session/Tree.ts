/**
 * The session tree: entries with parent ids and named branch heads, folded
 * from journal events. Forking sets one head (O(1)); nothing is copied.
 *
 * The fold mutates one Tree owned by one Session (10^5 entries must replay in
 * milliseconds); `toJSON`/`fromJSON` give the plain-data checkpoint.
 * Entry ids are journal positions, so an entry's parent always has a smaller
 * id (TreeInv) and ids are identical across replays and processes.
 */
import type { Event } from "../Event.ts"
import { assert } from "../internal/assert.ts"

export interface TreeData {
  /** parent[id] = parent entry id (0 = root), or -1 where position id is not an entry. */
  readonly parent: Array<number>
  readonly branches: Array<[string, number]>
  readonly active: string
  readonly labels: Array<[number, string]>
}

export const mainBranch = "main"

export class Tree {
  /** Indexed by position; position 0 is the virtual root. */
  private readonly parent: Array<number>
  readonly branches: Map<string, number>
  active: string
  readonly labels: Map<number, string>

  constructor(data?: TreeData) {
    this.parent = data ? data.parent.slice() : [0]
    this.branches = new Map(data ? data.branches : [[mainBranch, 0]])
    this.active = data ? data.active : mainBranch
    this.labels = new Map(data ? data.labels : [])
    assert(this.branches.has(this.active), "BranchHeadsInv", `active branch ${this.active} does not exist`)
  }

  /** The last position folded in. */
  get head(): number {
    return this.parent.length - 1
  }

  isEntry(id: number): boolean {
    return Number.isInteger(id) && id >= 1 && id < this.parent.length && (this.parent[id] as number) >= 0
  }

  parentOf(id: number): number {
    assert(this.isEntry(id), "TreeInv", `parentOf(${id}) of a non-entry`)
    return this.parent[id] as number
  }

  /** Folds the event at `position`. Asserts TreeInv and BranchHeadsInv: a violation is a bug or a forged journal. */
  apply(position: number, event: Event): void {
    assert(position === this.parent.length, "TreeInv", `position ${position} folded out of order (expected ${this.parent.length})`)
    switch (event._tag) {
      case "entry.appended": {
        assert(event.parentId === 0 || this.isEntry(event.parentId), "TreeInv", `entry ${position} has missing parent ${event.parentId}`)
        assert(
          this.branches.get(event.branch) === event.parentId,
          "BranchHeadsInv",
          `entry ${position} extends ${event.branch} at ${event.parentId}, but its head is ${this.branches.get(event.branch)}`
        )
        this.parent.push(event.parentId)
        this.branches.set(event.branch, position)
        return
      }
      case "branch.forked":
        assert(!this.branches.has(event.branch), "BranchHeadsInv", `branch ${event.branch} forked twice`)
        assert(event.from === 0 || this.isEntry(event.from), "TreeInv", `fork of ${event.branch} at missing entry ${event.from}`)
        this.branches.set(event.branch, event.from)
        break
      case "branch.switched":
        assert(this.branches.has(event.branch), "BranchHeadsInv", `switch to missing branch ${event.branch}`)
        this.active = event.branch
        break
      case "entry.labelled":
        assert(this.isEntry(event.entryId), "TreeInv", `label on missing entry ${event.entryId}`)
        if (event.label === "") this.labels.delete(event.entryId)
        else this.labels.set(event.entryId, event.label)
        break
      default:
        break
    }
    this.parent.push(-1)
  }

  /** Entry ids from the root to `head` (inclusive), oldest first. */
  pathTo(head: number): Array<number> {
    const ids: Array<number> = []
    for (let id = head; id !== 0; id = this.parent[id] as number) {
      assert(this.isEntry(id), "TreeInv", `path walks into non-entry ${id}`)
      ids.push(id)
    }
    return ids.reverse()
  }

  toJSON(): TreeData {
    return { parent: this.parent, branches: [...this.branches], active: this.active, labels: [...this.labels] }
  }
}
