package pipeline

// ByRetrieval is the native rank stage that orders candidates by their retrieval score
// (similarity to the query, or popularity for cold requests). It is the rank stage when no
// plugin is configured.
type ByRetrieval struct{}

// Info implements Stage.
func (ByRetrieval) Info() StageInfo {
	return StageInfo{Name: "rank", Kind: KindRank, Plugin: "by-retrieval", Version: "native", Variant: "champion"}
}

// Run implements Stage.
func (ByRetrieval) Run(env *Env, l *List) error {
	copy(l.Scores, l.Retrieval)
	l.SortByScore()
	return nil
}
