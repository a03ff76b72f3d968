package memory_test

import (
	"testing"

	"github.com/piperun/piperun/eventstore"
	"github.com/piperun/piperun/eventstore/eventstoretest"
	"github.com/piperun/piperun/eventstore/memory"
)

func TestContract(t *testing.T) {
	eventstoretest.Run(t, eventstoretest.Factory{
		New: func(t *testing.T) eventstore.Store { return memory.New() },
	})
}
