package app

import (
	"context"
	"fmt"
	"net"

	"github.com/oklog/run"

	"github.com/vigil-iot/vigil/internal/ingest"
	"github.com/vigil-iot/vigil/internal/mqttingest"
	"github.com/vigil-iot/vigil/internal/notify"
	"github.com/vigil-iot/vigil/internal/telemetry"
)

// addMQTT adds the MQTT subscriber and the embedded broker to g, when
// configured.
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
		br, err := mqttingest.NewBroker(in, mqttingest.BrokerOptions{Topic: tmpl, Decoder: dec, Verifier: a.verifier(), Logger: log})
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", a.cfg.MQTTListen)
		if err != nil {
			return fmt.Errorf("mqtt broker: listen on %s: %w (choose another with --mqtt-listen)", a.cfg.MQTTListen, err)
		}
		bctx, cancel := context.WithCancel(ctx)
		g.Add(func() error { return br.Run(bctx, ln) }, func(error) { cancel() })
	}
	return nil
}

// notifyPublisher returns the MQTT publisher of anomaly notifications and
// adds it to g, or returns nil when MQTTNotifyTopic is empty. It publishes
// to the external broker of MQTTBroker as client MQTTClientID + "-notify"
// (Validate requires MQTTBroker then): the embedded broker does not relay
// messages to subscribers.
func (a *App) notifyPublisher(ctx context.Context, g *run.Group) (notify.MQTTPublisher, error) {
	if a.cfg.MQTTNotifyTopic == "" {
		return nil, nil
	}
	if a.cfg.MQTTBroker == "" {
		return nil, fmt.Errorf("mqtt_notify_topic %q: no mqtt_broker to publish to", a.cfg.MQTTNotifyTopic)
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
