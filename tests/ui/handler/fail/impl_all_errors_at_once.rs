// Every broken rule of a `#[handler]` impl block is reported in one compile:
// the trait is not `Handler<E>` and the impl is generic.
use events_core::handler;

trait Notify {}

#[derive(Default)]
struct Mailer<T>(T);

#[handler]
impl<T> Notify for Mailer<T> {}

fn main() {}
