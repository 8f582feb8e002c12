//go:build !linux

package frontend

import (
	"errors"
	"os"
)

func (w *rawWriter) sendFile(*os.File, int64, int64) (int64, error) {
	return 0, errors.ErrUnsupported
}
