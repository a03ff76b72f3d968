package statecodec

// Snapshots and the read models store run states. EncodeState writes a
// state in a compact binary form, for two reasons measured on the restore
// path (where a command loads a run the server has not seen since it
// started, and the projector writes its read model):
//   - A state holds up to four configurations (the current one, the last
//     successful one, the backup's and the job's), most often the same
//     text of several kilobytes; each distinct one is written once, whole.
//   - Its strings are written with their lengths, so decoding them is a
//     copy: decoding the JSON of a state after an addition (its YAML full
//     of escaped newlines) took 51 µs, this form a few.
// DecodeState also reads the plain JSON of a Run, as states were stored
// before. The binary form is internal: the API and pages show JSON.

// A binary state starts with one of these magic bytes (plain JSON starts
// with '{' or space). stateMagic is the form written now; its products'
// figures count the measurement pairs. stateMagicNoPairs is the form
// written before that figure existed, read as a pair count of 0.
const (
	stateMagic        = 0xB2
	stateMagicNoPairs = 0xB1
)

// figuresOf returns how many figures a state of the given magic byte holds
// per products, or 0 if the byte starts no binary state.
func figuresOf(magic byte) int {
	switch magic {
	case stateMagic:
		return 6
	case stateMagicNoPairs:
		return 5
	}
	return 0
}

// Where a configuration of a state comes from: written in place, or equal
// to one written before it.
const (
	configInline byte = iota
	configSameAsCurrent
	configSameAsLastSuccessful
	configSameAsBackup
	// configDelta is a configuration written as its text's difference
	// from one before it: the earlier one's tag, the lengths of the prefix
	// and suffix the texts share, the middle of this text, and the rest of
	// the configuration as configInline has it. States are no longer
	// written so; those stored that way still decode.
	configDelta
)
