package app

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"

	"github.com/oklog/run"

	"github.com/vigil-iot/vigil/internal/ingest"
	"github.com/vigil-iot/vigil/internal/mqttingest"
	"github.com/vigil-iot/vigil/internal/notify"
	"github.com/vigil-iot/vigil/internal/telemetry"
)

// addMQTT adds the MQTT subscriber and the embedded broker to g, when
// configured. The embedded broker relays anomaly notifications on
// MQTTNotifyTopic when that is set (see notifyPublisher).
func (a *App) addMQTT(ctx context.Context, g *run.Group, in *ingest.Ingester) error {
	if a.cfg.MQTTBroker == "" && a.cfg.MQTTListen == "" {
		return nil
	}
	tmpl, err := mqttingest.ParseTemplate(a.cfg.MQTTTopic)
	if err != nil {
		return err
	}
	dec := mqttingest.NewDecoder(telemetry.Nanosecond, in.Limits().Line, a.opts.Now)
	log := a.opts.Logger.With("component", "mqtt")
	if a.cfg.MQTTBroker != "" {
		sub, err := mqttingest.NewSubscriber(in, mqttingest.SubscriberOptions{
			BrokerURL: a.cfg.MQTTBroker, Topic: tmpl, ClientID: a.cfg.MQTTClientID, Decoder: dec, Logger: log,
		})
		if err != nil {
			return err
		}
		sctx, cancel := context.WithCancel(ctx)
		g.Add(func() error { return sub.Run(sctx) }, func(error) { cancel() })
	}
	if a.cfg.MQTTListen != "" {
		opts := mqttingest.BrokerOptions{Topic: tmpl, Decoder: dec, Verifier: a.verifier(), Logger: log}
		if a.cfg.MQTTNotifyTopic != "" {
			if opts.NotifyTopic, err = mqttingest.ParseTemplate(a.cfg.MQTTNotifyTopic); err != nil {
				return fmt.Errorf("mqtt_notify_topic: %w", err)
			}
		}
		br, err := mqttingest.NewBroker(in, opts)
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", a.cfg.MQTTListen)
		if err != nil {
			return fmt.Errorf("mqtt broker: listen on %s: %w (choose another with --mqtt-listen)", a.cfg.MQTTListen, err)
		}
		if a.notifyBroker != nil {
			a.notifyBroker.br.Store(br)
		}
		bctx, cancel := context.WithCancel(ctx)
		g.Add(func() error { return br.Run(bctx, ln) }, func(error) { cancel() })
	}
	return nil
}

// notifyPublisher returns the MQTT publisher of anomaly notifications and
// adds it to g, or returns nil when MQTTNotifyTopic is empty. With the
// embedded broker on (MQTTListen), it publishes there, even when
// MQTTBroker is set too: subscribers log in to Vigil with a read token.
// Otherwise it publishes to the external broker of MQTTBroker as client
// MQTTClientID + "-notify" (Validate requires one of the two).
func (a *App) notifyPublisher(ctx context.Context, g *run.Group) (notify.MQTTPublisher, error) {
	if a.cfg.MQTTNotifyTopic == "" {
		return nil, nil
	}
	if a.cfg.MQTTListen != "" {
		// addMQTT builds the broker later, from the ingester; until it
		// serves, Publish fails with ErrUnavailable and the relay retries.
		a.notifyBroker = new(brokerPublisher)
		return a.notifyBroker, nil
	}
	if a.cfg.MQTTBroker == "" {
		return nil, fmt.Errorf("mqtt_notify_topic %q: no mqtt_listen or mqtt_broker to publish to", a.cfg.MQTTNotifyTopic)
	}
	pub, err := mqttingest.NewPublisher(mqttingest.PublisherOptions{
		BrokerURL: a.cfg.MQTTBroker,
		ClientID:  a.cfg.MQTTClientID + "-notify",
		Logger:    a.opts.Logger.With("component", "notify", "topic", a.cfg.MQTTNotifyTopic),
	})
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithCancel(ctx)
	g.Add(func() error { return pub.Run(pctx) }, func(error) { cancel() })
	return pub, nil
}

// brokerPublisher publishes on the embedded broker once addMQTT set it.
type brokerPublisher struct {
	br atomic.Pointer[mqttingest.Broker]
}

var (
	_ notify.MQTTPublisher = (*brokerPublisher)(nil)
	_ notify.MQTTPublisher = (*mqttingest.Broker)(nil)
)

// Publish publishes through the embedded broker; see
// mqttingest.Broker.Publish.
func (p *brokerPublisher) Publish(ctx context.Context, topic string, payload []byte) error {
	br := p.br.Load()
	if br == nil {
		return fmt.Errorf("mqtt publish to %s: embedded broker not built: %w", topic, mqttingest.ErrUnavailable)
	}
	return br.Publish(ctx, topic, payload)
}
