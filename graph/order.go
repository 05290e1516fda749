package graph

import "slices"

// The order in which ready nodes start matters when a graph's longest
// chain runs through a recurrence: a ConvLSTM's cell updates, one per
// frame, each waiting for the previous one and for its frame's encoder,
// while each frame's decoder waits only for its cell. Taken lowest index
// first, the nodes of frame t's decoder come before frame t+1's encoder
// and cell, and the chain of cells waits for them at every frame (the
// 2-thread U-Net row: each cell started 0.5-0.8 ms after the one before it
// was done). So the scheduler learns the graph's spine, the longest path
// through it by the nodes' measured times, and when a node of the spine is
// next to start, it starts first the ready nodes it waits for (itself
// included); every other choice stays lowest index first, which keeps a
// frame's values in cache between the nodes that write and read them
// (longest-path-first alone would run every frame's encoder ahead and
// leave their outputs cold for the decoders).

// spine is the longest path of a program (node indices in order) and, for
// every node, the first spine node it leads to (itself when on the spine;
// -1 when it leads to none).
type spine struct {
	path []int
	need []int
}

// Until runs were timed, the spine is the longest path by count of nodes
// (in an unrolled recurrence, the chain of cells: one node a frame, where
// a frame's encoder or decoder is several). The first concurrent run is
// not timed: it makes plans and buffers, and its times say more about
// those than about the work. The next timedRuns runs are: the spine is
// made again after each from each node's shortest time so far.
const timedRuns = 3

// learn counts a run that ended well and, when it was timed (dur: its
// node times in ns), makes the spine again from each node's shortest time
// so far.
func (d *deps) learn(dur []int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.runs++; dur == nil {
		return
	}
	if d.cost == nil {
		d.cost = slices.Clone(dur)
	} else {
		for i, t := range dur {
			d.cost[i] = min(d.cost[i], t)
		}
	}
	if sp := d.makeSpine(d.cost); sp != nil {
		d.order.Store(sp)
	}
}

// makeSpine finds the longest path by cost (each node's at least 1, so that
// the count of nodes breaks ties between free ones) and the first spine
// node each node leads to.
func (d *deps) makeSpine(cost []int64) *spine {
	n := len(d.pending)
	bottom := make([]int64, n) // the longest path from each node to an end
	succ := make([]int, n)     // the next node on it, -1 at an end
	for i := n - 1; i >= 0; i-- {
		succ[i] = -1
		var best int64
		for _, j := range d.next[i] {
			if bottom[j] > best {
				best, succ[i] = bottom[j], j
			}
		}
		bottom[i] = max(cost[i], 1) + best
	}
	sp := &spine{need: make([]int, n)}
	start := -1
	for i := range n {
		if d.pending[i] == 0 && (start < 0 || bottom[i] > bottom[start]) {
			start = i
		}
	}
	if start < 0 {
		return nil
	}
	onPath := make([]bool, n)
	for i := start; i >= 0; i = succ[i] {
		sp.path = append(sp.path, i)
		onPath[i] = true
	}
	for i := n - 1; i >= 0; i-- {
		sp.need[i] = -1
		if onPath[i] {
			sp.need[i] = i
			continue
		}
		for _, j := range d.next[i] {
			if k := sp.need[j]; k >= 0 && (sp.need[i] < 0 || k < sp.need[i]) {
				sp.need[i] = k
			}
		}
	}
	return sp
}
