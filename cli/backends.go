// Choosing the event store, the artifact store and Kafka: flags, environment variables and their help.

package cli

import (
	"flag"
	"os"
	"strconv"
	"strings"

	"github.com/piperun/piperun/messaging"
	"github.com/piperun/piperun/messaging/kafka"
	"github.com/piperun/piperun/wiring"
)

// EnvESDBURL selects EventStoreDB as the event store.
const EnvESDBURL = "PIPERUN_ESDB_URL"

const esdbEnv = EnvESDBURL + "  EventStoreDB URL, when --esdb-url is not given (default: the embedded store)"

func esdbFlag(fs *flag.FlagSet) {
	fs.String("esdb-url", "", "`URL` of EventStoreDB (esdb://host:2113?tls=false) to use as the event store instead of the embedded one in --data-dir")
}

// storage is where the command's state lives.
func (e *env) storage(fs *flag.FlagSet) wiring.Storage {
	st := wiring.Storage{DataDir: e.fromEnv(fs, "data-dir", EnvDataDir), ESDBURL: e.fromEnv(fs, "esdb-url", EnvESDBURL)}
	if fs.Lookup("artifacts-url") != nil {
		st.ArtifactsURL = e.fromEnv(fs, "artifacts-url", EnvArtifactsURL)
	}
	return st
}

// EnvArtifactsURL says where the products are stored.
const EnvArtifactsURL = "PIPERUN_ARTIFACTS_URL"

const artifactsEnv = EnvArtifactsURL + "  where products are stored, when --artifacts-url is not given (default <data-dir>/artifacts)"

// artifactsHelp describes --artifacts-url in the commands that take it.
const artifactsHelp = `
Products (the Parquet files of the runs) are stored by content digest in
<data-dir>/artifacts, or where --artifacts-url says: a directory, a
file:///DIR URL, or an S3 bucket (AWS, MinIO, Ceph) as
s3://BUCKET?endpoint=URL&region=REGION&use_path_style=true (add
&prefix=DIR/ to keep them under a prefix). A bucket's credentials come
from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the AWS SDK's other
sources), never from the URL. Processes that share no disk share a bucket.
The bucket must exist: a URL that is wrong or unreachable stops the start.`

func artifactsFlag(fs *flag.FlagSet) {
	fs.String("artifacts-url", "", "where products are stored: a `URL` (s3://BUCKET?endpoint=...&region=...&use_path_style=true) or directory (default <data-dir>/artifacts)")
}

// Environment variables of the distributed mode.
const (
	EnvKafkaBrokers = "PIPERUN_KAFKA_BROKERS"
	EnvKafkaTopic   = "PIPERUN_KAFKA_TOPIC"
	EnvWorkers      = "PIPERUN_WORKERS"
	EnvMetricsAddr  = "PIPERUN_METRICS_ADDR"
)

const (
	kafkaBrokersEnv = EnvKafkaBrokers + "  Kafka brokers, when --kafka-brokers is not given (default: none, the in-process bus)"
	kafkaTopicEnv   = EnvKafkaTopic + "    Kafka topic, when --kafka-topic is not given"
	gogcEnv         = "GOGC                   Go's garbage collector target (default here 400, not Go's 100: faster, for more memory)"
	gomemlimitEnv   = "GOMEMLIMIT             Go's soft memory limit (default here: half the memory of the machine or control group)"
)

func kafkaFlags(fs *flag.FlagSet) {
	fs.String("kafka-brokers", "", "comma-separated `HOST:PORT` list of Kafka brokers that carry the run events (default: none, the in-process bus)")
	fs.String("kafka-topic", messaging.DefaultTopic, "Kafka `TOPIC` of the run events (its dead letters go to TOPIC.dead-letter; TOPIC.relay elects the relay)")
	fs.Int("kafka-partitions", kafka.DefaultPartitions, "partition `COUNT` of the topic when piperun creates it (an existing topic is left as it is; fewer partitions are logged)")
	fs.Int("kafka-replication-factor", 0, "replication `FACTOR` of the topics piperun creates (default 0: the broker's default.replication.factor)")
	fs.Int("kafka-max-message-bytes", kafka.DefaultMaxMessageBytes, "largest record in `BYTES` piperun produces, and the max.message.bytes of the topics it creates; it holds the largest event the API accepts, and a larger event goes to the dead-letter topic")
	fs.Int("kafka-batch-size", kafka.DefaultBatchSize, "events per produce request of the relay (`N`, 1 to 10000)")
	fs.String("kafka-relay-group", kafka.DefaultRelayGroup, "consumer `GROUP` that elects the relay; its committed offset metadata is the relay's checkpoint")
	fs.Bool("kafka-tls", false, "speak TLS to the brokers")
	fs.String("kafka-tls-ca-file", "", "PEM `FILE` of the authorities that sign the brokers' certificates (default: the system's; needs --kafka-tls)")
	fs.String("kafka-tls-cert-file", "", "PEM `FILE` of piperun's client certificate (with --kafka-tls-key-file; needs --kafka-tls)")
	fs.String("kafka-tls-key-file", "", "PEM `FILE` of piperun's client key (with --kafka-tls-cert-file)")
	fs.Bool("kafka-tls-insecure-skip-verify", false, "accept any broker certificate: for testing only; refused with --kafka-tls-ca-file")
	fs.String("kafka-sasl-mechanism", "", "SASL `MECHANISM`: SCRAM-SHA-256 or SCRAM-SHA-512 (default: none)")
	fs.String("kafka-sasl-user", "", "SASL `USER`")
	fs.String("kafka-sasl-password-file", "", "`FILE` holding the SASL password (or set "+EnvKafkaSASLPassword+"; never on the command line)")
}

// Environment variables of the Kafka settings.
const (
	EnvKafkaPartitions      = "PIPERUN_KAFKA_PARTITIONS"
	EnvKafkaReplication     = "PIPERUN_KAFKA_REPLICATION_FACTOR"
	EnvKafkaMaxMessageBytes = "PIPERUN_KAFKA_MAX_MESSAGE_BYTES"
	EnvKafkaBatchSize       = "PIPERUN_KAFKA_BATCH_SIZE"
	EnvKafkaRelayGroup      = "PIPERUN_KAFKA_RELAY_GROUP"
	EnvKafkaTLS             = "PIPERUN_KAFKA_TLS"
	EnvKafkaTLSCAFile       = "PIPERUN_KAFKA_TLS_CA_FILE"
	EnvKafkaTLSCertFile     = "PIPERUN_KAFKA_TLS_CERT_FILE"
	EnvKafkaTLSKeyFile      = "PIPERUN_KAFKA_TLS_KEY_FILE"
	EnvKafkaTLSInsecure     = "PIPERUN_KAFKA_TLS_INSECURE_SKIP_VERIFY"
	EnvKafkaSASLMechanism   = "PIPERUN_KAFKA_SASL_MECHANISM"
	EnvKafkaSASLUser        = "PIPERUN_KAFKA_SASL_USER"
	EnvKafkaSASLPassword    = "PIPERUN_KAFKA_SASL_PASSWORD"
	EnvKafkaSASLPassFile    = "PIPERUN_KAFKA_SASL_PASSWORD_FILE"
)

// kafkaSettingsEnv documents the environment of the Kafka settings.
var kafkaSettingsEnv = []string{
	"PIPERUN_KAFKA_<SETTING>  each --kafka-<setting> below, when the flag is not given (e.g. " + EnvKafkaTLSCAFile + ", " + EnvKafkaSASLUser + ")",
	EnvKafkaSASLPassword + "  the SASL password, when " + EnvKafkaSASLPassFile + " / --kafka-sasl-password-file is not given (never logged)",
}

// kafkaConfig is the Kafka configuration from the flags and environment,
// checked; no brokers means the in-process bus (and no other setting).
func (e *env) kafkaConfig(fs *flag.FlagSet) (kafka.Config, error) {
	str := func(flag, env string) string { return strings.TrimSpace(e.fromEnv(fs, flag, env)) }
	num := func(flag, env string) (int, error) {
		v := str(flag, env)
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, usagef("--%s (or %s) must be a whole number, not %q", flag, env, v)
		}
		return n, nil
	}
	boolean := func(flag, env string) (bool, error) {
		v := str(flag, env)
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, usagef("--%s (or %s) must be true or false, not %q", flag, env, v)
		}
		return b, nil
	}
	cfg := kafka.Config{
		Brokers:    kafka.ParseBrokers(str("kafka-brokers", EnvKafkaBrokers)),
		Topic:      str("kafka-topic", EnvKafkaTopic),
		RelayGroup: str("kafka-relay-group", EnvKafkaRelayGroup),
		TLS: kafka.TLSConfig{
			CAFile:   str("kafka-tls-ca-file", EnvKafkaTLSCAFile),
			CertFile: str("kafka-tls-cert-file", EnvKafkaTLSCertFile),
			KeyFile:  str("kafka-tls-key-file", EnvKafkaTLSKeyFile),
		},
		SASL: kafka.SASLConfig{
			Mechanism: strings.ToUpper(str("kafka-sasl-mechanism", EnvKafkaSASLMechanism)),
			User:      str("kafka-sasl-user", EnvKafkaSASLUser),
		},
	}
	var err error
	var n int
	if n, err = num("kafka-partitions", EnvKafkaPartitions); err != nil {
		return cfg, err
	}
	if n < 1 || n > 10000 {
		return cfg, usagef("--kafka-partitions (or %s) must be 1 to 10000, not %d", EnvKafkaPartitions, n)
	}
	cfg.Partitions = int32(n)
	if n, err = num("kafka-replication-factor", EnvKafkaReplication); err != nil {
		return cfg, err
	}
	if n < 0 || n > 100 {
		return cfg, usagef("--kafka-replication-factor (or %s) must be 0 (the broker's default) to 100, not %d", EnvKafkaReplication, n)
	}
	cfg.ReplicationFactor = int16(n)
	if cfg.MaxMessageBytes, err = num("kafka-max-message-bytes", EnvKafkaMaxMessageBytes); err != nil {
		return cfg, err
	}
	if cfg.BatchSize, err = num("kafka-batch-size", EnvKafkaBatchSize); err != nil {
		return cfg, err
	}
	if cfg.TLS.Enabled, err = boolean("kafka-tls", EnvKafkaTLS); err != nil {
		return cfg, err
	}
	if cfg.TLS.InsecureSkipVerify, err = boolean("kafka-tls-insecure-skip-verify", EnvKafkaTLSInsecure); err != nil {
		return cfg, err
	}
	if file := str("kafka-sasl-password-file", EnvKafkaSASLPassFile); file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return cfg, usagef("--kafka-sasl-password-file: %v", err)
		}
		cfg.SASL.Password = strings.TrimRight(string(b), "\r\n")
		if cfg.SASL.Password == "" {
			return cfg, usagef("--kafka-sasl-password-file %s is empty", file)
		}
	} else {
		cfg.SASL.Password = e.getenv(EnvKafkaSASLPassword)
	}
	if len(cfg.Brokers) == 0 {
		if cfg.TLS.Enabled || cfg.TLS != (kafka.TLSConfig{}) || cfg.SASL.Mechanism != "" || cfg.SASL.User != "" {
			return cfg, usagef("Kafka TLS and SASL settings need --kafka-brokers (or %s)", EnvKafkaBrokers)
		}
		return cfg, nil
	}
	if err := cfg.Validate(); err != nil {
		return cfg, usagef("%v", err)
	}
	return cfg, nil
}
