//! Incidents: problems a tenant (or the platform on its behalf) reports, for the
//! dashboard.

use chrono::{DateTime, Utc};

use super::auth::tenant_refused;
use super::{Incident, NewIncident, Store, StoreError, api_id, db_id, db_limit, now, random_id};

/// The severities an incident may have; the migration's `CHECK` holds the same list.
const SEVERITIES: [&str; 4] = ["low", "medium", "high", "critical"];
/// Longest title, in characters.
const MAX_TITLE_CHARS: usize = 200;
/// Longest description, in characters.
const MAX_DESCRIPTION_CHARS: usize = 10_000;

#[derive(sqlx::FromRow)]
pub(super) struct IncidentRow {
    id: String,
    tenant_id: String,
    guild_id: Option<i64>,
    severity: String,
    title: String,
    description: String,
    status: String,
    created_by: String,
    created_at: DateTime<Utc>,
}

impl From<IncidentRow> for Incident {
    fn from(r: IncidentRow) -> Incident {
        Incident {
            id: r.id,
            tenant_id: r.tenant_id,
            guild_id: r.guild_id.map(api_id),
            severity: r.severity,
            title: r.title,
            description: r.description,
            status: r.status,
            created_by: r.created_by,
            created_at: r.created_at,
        }
    }
}

/// Checks what the caller controls, naming the field, so the API can pass the message
/// on as a 400 as it is.
fn check_incident(i: &NewIncident) -> Result<(), StoreError> {
    if !SEVERITIES.contains(&i.severity.as_str()) {
        return Err(StoreError::InvalidArgument(format!(
            "severity must be one of {}, got {:?}",
            SEVERITIES.join(", "),
            i.severity
        )));
    }
    let title = i.title.chars().count();
    if title == 0 || title > MAX_TITLE_CHARS {
        return Err(StoreError::InvalidArgument(format!(
            "title must be 1 to {MAX_TITLE_CHARS} characters, got {title}"
        )));
    }
    let description = i.description.chars().count();
    if description > MAX_DESCRIPTION_CHARS {
        return Err(StoreError::InvalidArgument(format!(
            "description must be at most {MAX_DESCRIPTION_CHARS} characters, got {description}"
        )));
    }
    Ok(())
}

impl Store {
    /// Records an incident, stamped now, with status `"open"` and id = 32 random hex
    /// digits. Refused with [`StoreError::InvalidArgument`], the message naming the
    /// field: a severity other than `low`, `medium`, `high`, `critical`; a title not 1 to
    /// 200 characters; a description over 10,000 characters; an unknown tenant.
    pub async fn create_incident(&self, i: &NewIncident) -> Result<Incident, StoreError> {
        check_incident(i)?;
        let incident = Incident {
            id: random_id(),
            tenant_id: i.tenant_id.clone(),
            guild_id: i.guild_id,
            severity: i.severity.clone(),
            title: i.title.clone(),
            description: i.description.clone(),
            status: "open".to_string(),
            created_by: i.created_by.clone(),
            created_at: now(),
        };
        let result = on_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO incidents (id, tenant_id, guild_id, severity, title, description,
                                        status, created_by, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&incident.id)
            .bind(&incident.tenant_id)
            .bind(incident.guild_id.map(db_id))
            .bind(&incident.severity)
            .bind(&incident.title)
            .bind(&incident.description)
            .bind(&incident.status)
            .bind(&incident.created_by)
            .bind(incident.created_at)
            .execute(pool)
            .await
            .map(|_| ())
        });
        result.map_err(|e| tenant_refused(e, &i.tenant_id))?;
        Ok(incident)
    }

    /// A tenant's latest `limit` incidents, newest first (ones created in the same
    /// microsecond by id, descending, so the order is deterministic).
    pub async fn incidents(
        &self,
        tenant_id: &str,
        limit: u32,
    ) -> Result<Vec<Incident>, StoreError> {
        let rows: Vec<IncidentRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT id, tenant_id, guild_id, severity, title, description, status,
                        created_by, created_at
                 FROM incidents
                 WHERE tenant_id = $1
                 ORDER BY created_at DESC, id DESC
                 LIMIT $2",
            )
            .bind(tenant_id)
            .bind(db_limit(limit))
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(Incident::from).collect())
    }
}
