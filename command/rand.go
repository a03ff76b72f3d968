package command

import "crypto/rand"

var randRead = rand.Read
