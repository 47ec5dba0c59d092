package main

import (
	"context"
	"log/slog"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
)

// systemdReady tells systemd (Type=notify) that the listeners are bound
// and the snapshot is loaded, and keeps its watchdog fed while the data
// plane is healthy. It returns the function that announces the stop.
// Outside systemd (no NOTIFY_SOCKET) every call is a no-op.
func systemdReady(ctx context.Context, healthy func() error, log *slog.Logger) (stopping func()) {
	sent, err := sd.SdNotify(false, sd.SdNotifyReady)
	if err != nil {
		log.Warn("systemd readiness notification failed", "err", err)
	}
	if !sent {
		return func() {}
	}
	if every, err := sd.SdWatchdogEnabled(false); err == nil && every > 0 {
		// Half the interval, as systemd recommends; a data plane that cannot
		// serve stops feeding the watchdog, and systemd restarts it.
		go feedWatchdog(ctx, every/2, healthy, log)
	}
	return func() { _, _ = sd.SdNotify(false, sd.SdNotifyStopping) }
}

func feedWatchdog(ctx context.Context, every time.Duration, healthy func() error, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := healthy(); err != nil {
			log.Warn("not feeding the systemd watchdog: data plane unhealthy", "err", err)
			continue
		}
		_, _ = sd.SdNotify(false, sd.SdNotifyWatchdog)
	}
}
