//! Stages: the master stage, an operator's create, rename and delete, adopting the provider's
//! managed stages, reconciling with the provider, and scale-down.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use uuid::Uuid;

use super::service::{MASTER_STAGE_NAME, MAX_ATTEMPTS, PoolService, PoolServiceError};
use crate::commands::publish::Attempt;
use crate::domain::stage_pool::{PoolError, ScaleDownPolicy};
use crate::event_store::{NewEvent, Published};
use crate::events::{Event, StageCreated};
use crate::ivs::ProvidedStage;
use crate::ivs::arn::StageArn;

impl PoolService {
    /// Creates the master stage if the pool has none (first start). Safe on several instances at
    /// once: the guard lets one win, the others see its stage (the loser's stage is deleted at the
    /// provider). [`PoolServiceError::Contended`] after 20 lost races.
    #[tracing::instrument(skip_all, err)]
    pub async fn ensure_master_stage(&self) -> Result<(), PoolServiceError> {
        let _turn = self.inner.decide.lock().await;
        self.retry(MAX_ATTEMPTS, move || async move {
            let (exists, expected) = self.snapshot(|p| p.master().is_some());
            if exists {
                return Ok(Attempt::Done(()));
            }
            let stage = self
                .inner
                .provider
                .create_stage(MASTER_STAGE_NAME.to_owned(), self.stage_tags(false))
                .await?;
            let event = Event::StageCreated(StageCreated {
                stage_arn: stage.arn.clone(),
                name: stage.name,
                auto_scaled: false,
                is_master: true,
                tags: stage.tags,
            });
            let new = NewEvent::new(self.now(), event);
            Ok(match self.publish_pool_event(new, expected).await? {
                Some(_) => Attempt::Done(()),
                None => {
                    let _ = self.inner.provider.delete_stage(stage.arn).await;
                    Attempt::Conflicted
                }
            })
        })
        .await?
        .ok_or(PoolServiceError::Contended)
    }

    /// An operator adds a stage (`POST /api/stage`): created at the provider with `tags` plus
    /// `Environment` and `ManagedBy=onair`, then recorded. `STAGE_LIMIT_REACHED` at the limit.
    #[tracing::instrument(skip_all, fields(stage_name = %name), err(level = "info"))]
    pub async fn create_stage(
        &self,
        name: &str,
        tags: BTreeMap<String, String>,
        event_id: Option<Uuid>,
    ) -> Result<(ProvidedStage, Published), PoolServiceError> {
        let limits = self.inner.settings.limits;
        let _turn = self.inner.decide.lock().await;
        self.read(|p| p.decide_create_stage(limits))?;
        let mut all_tags = tags;
        all_tags.extend(self.stage_tags(false));
        let stage = self
            .inner
            .provider
            .create_stage(name.to_owned(), all_tags)
            .await?;
        let result = self
            .decide_and_publish(
                |p, _| {
                    p.decide_create_stage(limits)?;
                    Ok((
                        Event::StageCreated(StageCreated {
                            stage_arn: stage.arn.clone(),
                            name: stage.name.clone(),
                            auto_scaled: false,
                            is_master: false,
                            tags: stage.tags.clone(),
                        }),
                        (),
                    ))
                },
                event_id,
            )
            .await;
        match result {
            Ok(((), published)) => Ok((stage, published)),
            Err(e) => {
                self.delete_at_provider(&stage.arn).await;
                Err(e)
            }
        }
    }

    /// Renames a stage at the provider and records it.
    #[tracing::instrument(skip_all, fields(stage_arn, stage_name = %name), err(level = "info"))]
    pub async fn rename_stage(
        &self,
        stage_arn: &StageArn,
        name: &str,
    ) -> Result<Published, PoolServiceError> {
        let _turn = self.inner.decide.lock().await;
        self.read(|p| p.decide_rename(stage_arn, name))?;
        self.inner
            .provider
            .update_stage(stage_arn.to_string(), name.to_owned())
            .await?;
        let ((), published) = self
            .decide_and_publish(
                |p, _| Ok((Event::StageRenamed(p.decide_rename(stage_arn, name)?), ())),
                None,
            )
            .await?;
        Ok(published)
    }

    /// Deletes an empty stage that is not the master: recorded first (so nobody is seated on it
    /// any more), then deleted at the provider.
    #[tracing::instrument(skip_all, fields(stage_arn), err(level = "info"))]
    pub async fn delete_stage(&self, stage_arn: &StageArn) -> Result<Published, PoolServiceError> {
        let _turn = self.inner.decide.lock().await;
        let ((), published) = self
            .decide_and_publish(
                |p, _| Ok((Event::StageDeleted(p.decide_delete(stage_arn)?), ())),
                None,
            )
            .await?;
        self.delete_at_provider(stage_arn).await;
        Ok(published)
    }

    /// Adopts the provider's stages tagged `ManagedBy=onair` that the pool does not hold yet (a
    /// start on a new stream against an existing IVS account). A stage named `master-stage` becomes
    /// the master when the pool has none; `AutoScaled=true` marks auto-scaled ones. Returns how many
    /// were adopted. The local provider has none.
    #[tracing::instrument(skip_all, err)]
    pub async fn adopt_managed_stages(&self) -> Result<usize, PoolServiceError> {
        let provided = self.inner.provider.list_stages().await?;
        let _turn = self.inner.decide.lock().await;
        let mut adopted = 0;
        for stage in provided {
            if stage.tags.get("ManagedBy").map(String::as_str) != Some("onair") {
                continue;
            }
            let result = self
                .decide_and_publish(
                    |p, _| {
                        if p.stage(&stage.arn).is_some() {
                            return Err(PoolError::StageNotFound(String::new()));
                        }
                        let is_master = stage.name == MASTER_STAGE_NAME && p.master().is_none();
                        Ok((
                            Event::StageCreated(StageCreated {
                                stage_arn: stage.arn.clone(),
                                name: stage.name.clone(),
                                auto_scaled: !is_master
                                    && stage.tags.get("AutoScaled").map(String::as_str)
                                        == Some("true"),
                                is_master,
                                tags: stage.tags.clone(),
                            }),
                            (),
                        ))
                    },
                    None,
                )
                .await;
            match result {
                Ok(_) => adopted += 1,
                Err(PoolServiceError::Rule(PoolError::StageNotFound(_))) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(adopted)
    }

    /// Compares the pool with the provider: returns the orphans (provider stages tagged
    /// `ManagedBy=onair` the pool does not hold; deleted when `delete_orphans`) and the pool stages
    /// the provider does not have. A provider that keeps no stages (local) reports nothing.
    #[tracing::instrument(level = "debug", skip_all, fields(delete_orphans), err)]
    pub async fn reconcile(
        &self,
        delete_orphans: bool,
    ) -> Result<(Vec<String>, Vec<String>), PoolServiceError> {
        let provided = self.inner.provider.list_stages().await?;
        if self.inner.provider.name() == "local" {
            return Ok((Vec::new(), Vec::new()));
        }
        let known: std::collections::HashSet<&str> =
            provided.iter().map(|s| s.arn.as_str()).collect();
        let (orphans, missing) = self.read(|p| {
            let orphans: Vec<String> = provided
                .iter()
                .filter(|s| s.tags.get("ManagedBy").map(String::as_str) == Some("onair"))
                .filter(|s| p.stage(&s.arn).is_none())
                .map(|s| s.arn.clone())
                .collect();
            let missing: Vec<String> = p
                .stages()
                .iter()
                .filter(|s| !known.contains(s.arn.as_str()))
                .map(|s| s.arn.clone())
                .collect();
            (orphans, missing)
        });
        for arn in &orphans {
            if delete_orphans {
                tracing::warn!(stage_arn = %arn, "orphan stage (ManagedBy=onair, not in the pool): deleting");
                self.delete_at_provider(arn).await;
            } else {
                tracing::warn!(stage_arn = %arn, "orphan stage (ManagedBy=onair, not in the pool); set ONAIR_RECONCILE_DELETE_ORPHANS=true to delete it");
            }
        }
        for arn in &missing {
            tracing::warn!(stage_arn = %arn, "pool stage missing at the provider");
        }
        Ok((orphans, missing))
    }

    /// Runs the scale-down steps that are due by the service's clock (drain, delete when empty);
    /// returns how many events were stored.
    #[tracing::instrument(level = "debug", skip_all, err)]
    pub async fn scale_down(&self, policy: ScaleDownPolicy) -> Result<usize, PoolServiceError> {
        if self.read(|p| p.decide_scale_down(self.now(), policy).is_none()) {
            return Ok(0);
        }
        let _turn = self.inner.decide.lock().await;
        let stored = &AtomicUsize::new(0);
        self.retry(MAX_ATTEMPTS, move || async move {
            let at = self.now();
            let (step, expected) = self.snapshot(|p| p.decide_scale_down(at, policy));
            let Some(event) = step else {
                return Ok(Attempt::Done(()));
            };
            let Some(_) = self
                .publish_pool_event(NewEvent::new(at, event.clone()), expected)
                .await?
            else {
                return Ok(Attempt::Conflicted);
            };
            stored.fetch_add(1, Ordering::Relaxed);
            if let Event::StageDeleted(deleted) = &event {
                tracing::info!(stage_arn = %deleted.stage_arn, "drained stage deleted");
                self.delete_at_provider(&deleted.stage_arn).await;
            } else if let Event::StageDrainStarted(drain) = &event {
                tracing::info!(stage_arn = %drain.stage_arn, viewers = drain.viewer_count, "stage draining");
            }
            Ok(Attempt::Again)
        })
        .await?;
        Ok(stored.load(Ordering::Relaxed))
    }
}
