package hosting

import (
	"context"
	"errors"

	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/acme"
	"github.com/aegir-project/aegir/pkg/queue"
	"github.com/aegir-project/aegir/pkg/store"
)

// StateACMEAccounts keeps the ACME accounts in the state (acme.Accounts),
// one for each CA directory, which every master sharing the state uses.
// An account is recorded as made by this master (queue.Master).
type StateACMEAccounts struct {
	Store *store.Store
}

var _ acme.Accounts = (*StateACMEAccounts)(nil)

func (s *StateACMEAccounts) String() string { return "the state" }

func fromStoreAccount(a *store.ACMEAccount) acme.Account {
	return acme.Account{Directory: a.Directory, KeyPEM: a.KeyPEM, Location: a.Location, Email: a.Email}
}

// Load is the account of directory (acme.Accounts).
func (s *StateACMEAccounts) Load(ctx context.Context, directory string) (acme.Account, error) {
	a, err := s.Store.ACMEAccount(ctx, directory)
	if errors.Is(err, store.ErrNotFound) {
		return acme.Account{}, acme.ErrNoAccount
	}
	if err != nil {
		return acme.Account{}, stateErr("reading", err)
	}
	return fromStoreAccount(a), nil
}

func stateErr(what string, err error) error {
	return provision.Errorf(provision.ErrInternal, "check that the state database answers, then try again",
		"%s the ACME account in the state: %v", what, err)
}

// Create stores a unless the directory has an account (acme.Accounts).
func (s *StateACMEAccounts) Create(ctx context.Context, a acme.Account) (acme.Account, error) {
	got, err := s.Store.CreateACMEAccount(ctx, store.ACMEAccount{Directory: a.Directory, KeyPEM: a.KeyPEM, Location: a.Location, Email: a.Email}, queue.Master())
	if err != nil {
		return acme.Account{}, stateErr("storing", err)
	}
	return fromStoreAccount(got), nil
}

// Save records a's location and email (acme.Accounts).
func (s *StateACMEAccounts) Save(ctx context.Context, a acme.Account) error {
	if _, err := s.Store.SetACMEAccount(ctx, a.Directory, a.KeyPEM, a.Location, a.Email); err != nil {
		return stateErr("recording the URL of", err)
	}
	return nil
}
