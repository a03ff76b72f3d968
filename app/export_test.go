package app

// CachedStateAt returns run name's state as the command cache holds it, in
// statecodec.EncodeState's form, if the cache holds it at version.
func (s *Service) CachedStateAt(name string, version int64) ([]byte, bool) {
	cache := s.runCache()
	if cache == nil {
		return nil, false
	}
	return cache.getStateVersion(name, version)
}
