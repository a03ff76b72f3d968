// Package distributed tests the deployed topology of distributed mode as
// separate processes with no directory in common: two API replicas and two
// workers (the real binary), each with its own data directory and its own
// copy of the input images, on a network event store (EventStoreDB: the
// in-process fake node, or a real server when PIPERUN_TEST_ESDB_URL is
// set), Kafka (franz-go's kfake) and an S3 bucket (gofakes3), all served
// by the test process on 127.0.0.1.
package distributed
