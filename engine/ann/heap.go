package ann

// cand is an id with its score against the current query. The heaps below are typed on purpose:
// container/heap over an interface costs an allocation per push (MEASURED.md).
type cand struct {
	id    uint32
	score float32
}

// maxHeap keeps the best (highest score) candidate on top.
type maxHeap []cand

func (h *maxHeap) push(c cand) {
	s := append(*h, c)
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if s[p].score >= c.score {
			break
		}
		s[i] = s[p]
		i = p
	}
	s[i] = c
	*h = s
}

func (h *maxHeap) pop() cand {
	s := *h
	top := s[0]
	n := len(s) - 1
	last := s[n]
	s = s[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		if r := l + 1; r < n && s[r].score > s[l].score {
			l = r
		}
		if s[l].score <= last.score {
			break
		}
		s[i] = s[l]
		i = l
	}
	if n > 0 {
		s[i] = last
	}
	*h = s
	return top
}

// minHeap keeps the worst (lowest score) candidate on top, so it holds the best n seen so far.
type minHeap []cand

func (h *minHeap) push(c cand) {
	s := append(*h, c)
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if s[p].score <= c.score {
			break
		}
		s[i] = s[p]
		i = p
	}
	s[i] = c
	*h = s
}

func (h *minHeap) pop() cand {
	s := *h
	top := s[0]
	n := len(s) - 1
	last := s[n]
	s = s[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		if r := l + 1; r < n && s[r].score < s[l].score {
			l = r
		}
		if s[l].score >= last.score {
			break
		}
		s[i] = s[l]
		i = l
	}
	if n > 0 {
		s[i] = last
	}
	*h = s
	return top
}

// offer keeps c if the heap holds fewer than n or c beats the worst kept.
func (h *minHeap) offer(c cand, n int) {
	if len(*h) < n {
		h.push(c)
		return
	}
	if c.score > (*h)[0].score {
		(*h)[0] = c
		h.down0()
	}
}

// down0 restores the heap after its top was replaced.
func (h *minHeap) down0() {
	s := *h
	n := len(s)
	c := s[0]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		if r := l + 1; r < n && s[r].score < s[l].score {
			l = r
		}
		if s[l].score >= c.score {
			break
		}
		s[i] = s[l]
		i = l
	}
	s[i] = c
}

// drainTo pops the best k of h into dst[:0] in descending score order and empties h.
func (h *minHeap) drainTo(dst []Result, k int) []Result {
	for len(*h) > k {
		h.pop()
	}
	n := len(*h)
	dst = dst[:0]
	if cap(dst) < n {
		dst = make([]Result, n)
	} else {
		dst = dst[:n]
	}
	for i := n - 1; i >= 0; i-- {
		c := h.pop()
		dst[i] = Result{ID: c.id, Score: c.score}
	}
	return dst
}
